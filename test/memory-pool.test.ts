/**
 * The shared memory budget (issue 14), through the public API against the local server: a pool's ceiling holds
 * whatever the streams do, an exhausted pool makes writers wait and recovers, many streams through a tiny pool all
 * complete, a window grows when memory holds its writer back and shrinks when the writer slows, and a slow stream
 * holds about one block.
 */
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, MemoryPool } from '../src/index.js';
import {
  contentAt,
  expectedDigest,
  K256,
  KiB,
  MiB,
  source,
  storedDigest,
  streamOptions,
  uniqueName,
  useLocalGcs,
  written,
} from './helpers.js';

const ctx = useLocalGcs();

/** Options for a stream of the adaptive kind (the defaults), drawing from `memory`. */
function pooled(name: string, memory: MemoryPool, extra: Parameters<typeof streamOptions>[2] = {}) {
  return streamOptions(ctx.server, name, { adaptiveRequests: true, bufferChunks: 4, chunkSize: MiB, memory, ...extra });
}

describe('MemoryPool', () => {
  it('refuses a ceiling that is not a positive multiple of 256 KiB, and a memory option that is not a pool', () => {
    expect(() => new MemoryPool({ maxBytes: 1000 })).toThrow(InvalidArgumentError);
    expect(() => new MemoryPool({ maxBytes: 0 })).toThrow(InvalidArgumentError);
    expect(() => new MemoryPool({ idleReleaseMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { memory: {} as MemoryPool }))).toThrow(/memory must be a MemoryPool/);
  });

  it('20 fast streams through a 1 MiB pool: the ceiling holds (by the pool’s own count), every object is intact', async () => {
    const pool = new MemoryPool({ maxBytes: 4 * K256 });
    const size = 3 * MiB + 5;
    const names = Array.from({ length: 20 }, (_, i) => uniqueName(`tiny-pool-${i}`));
    await Promise.all(names.map((name) => pipeline(source(size, 64 * KiB), createGcsWriteStream(pooled(name, pool)))));
    for (const name of names) expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    const stats = pool.stats();
    expect(stats.peakBytesHeld).toBeLessThanOrEqual(4 * K256);
    expect(stats.peakBytesHeld).toBeGreaterThan(0);
    expect(stats).toMatchObject({ bytesLent: 0, streams: 0, waitingStreams: 0 });
    pool.trim();
    expect(pool.stats().bytesHeld).toBe(0);
  });

  it('200 streams through a 2 MiB pool all complete: no deadlock', async () => {
    const pool = new MemoryPool({ maxBytes: 8 * K256 });
    const size = K256 + 1000;
    const names = Array.from({ length: 200 }, (_, i) => uniqueName(`crowd-${i}`));
    // The default stall timeout: 200 streams on a loaded machine can wait seconds for an answer, which is no stall.
    const retry = { stallTimeoutMs: 60_000 };
    await Promise.all(names.map((name) => pipeline(source(size, 48 * KiB), createGcsWriteStream(pooled(name, pool, { retry })))));
    for (const name of names) expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(pool.stats().peakBytesHeld).toBeLessThanOrEqual(8 * K256);
  });

  it('an exhausted pool makes a writer wait (backpressure), and it goes on once another stream gives blocks back', async () => {
    const pool = new MemoryPool({ maxBytes: K256 });
    const hogName = uniqueName('hog');
    // The hog takes the pool's one block and keeps it: at its declared size the bytes wait for end().
    const hog = createGcsWriteStream(pooled(hogName, pool, { size: K256 }));
    await written(hog, contentAt(0, K256));
    expect(pool.stats().bytesLent).toBe(K256);
    const waiterName = uniqueName('waiter');
    const waiter = createGcsWriteStream(pooled(waiterName, pool));
    let accepted = false;
    waiter.write(contentAt(0, 100), () => {
      accepted = true;
    });
    await new Promise<void>((resolve) => waiter.once('session', () => resolve()));
    // Its one block is owed: the pool says so and the write has not been taken.
    expect(pool.stats().waitingStreams).toBe(1);
    expect(waiter.memory.writerWaiting).toBe(true);
    expect(accepted).toBe(false);
    hog.end();
    await finished(hog);
    waiter.end();
    await finished(waiter);
    expect(accepted).toBe(true);
    expect(storedDigest(ctx.server, hogName)).toBe(expectedDigest(K256));
    expect(storedDigest(ctx.server, waiterName)).toBe(expectedDigest(100));
  });
});

describe('a window that follows its writer', () => {
  it('grows while memory holds a fast writer back, then shrinks when the writer slows', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('grow-shrink');
    const stream = createGcsWriteStream(pooled(name, pool));
    const targets: number[] = [];
    stream.on('progress', () => targets.push(stream.memory.targetBytes));
    expect(stream.memory.targetBytes).toBe(K256);
    // Fast: 6 MiB in one go.
    let pos = 0;
    await written(stream, contentAt(0, 6 * MiB));
    pos = 6 * MiB;
    const grown = Math.max(...targets);
    expect(grown).toBeGreaterThanOrEqual(2 * MiB);
    // Slow: a few KiB at a time, each only after the previous bytes were committed where possible.
    for (let i = 0; i < 12; i++) {
      stream.write(contentAt(pos, K256));
      pos += K256;
      await once(stream, 'progress');
    }
    expect(stream.memory.targetBytes).toBeLessThan(grown);
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(pos));
  });

  it('a trickling source holds at most two blocks, and its requests are one block each', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('trickle');
    const stream = createGcsWriteStream(pooled(name, pool, { chunkSize: 8 * MiB }));
    let peakHeld = 0;
    let pos = 0;
    const size = 2 * MiB + 123;
    let committed = 0;
    stream.on('progress', (progress) => (committed = progress.bytesCommitted));
    while (pos < size) {
      const n = Math.min(32 * KiB, size - pos);
      await written(stream, contentAt(pos, n));
      pos += n;
      peakHeld = Math.max(peakHeld, stream.memory.bytesHeld);
      // A slow source, paced by the stream rather than by a timer a loaded machine stretches: once it has written
      // into a new block, it writes on only after every full block before it is committed.
      const full = Math.floor(pos / K256) * K256;
      while (pos > full && committed < full) await once(stream, 'progress');
    }
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(peakHeld).toBeLessThanOrEqual(2 * K256);
    const bodies = ctx.server.requests.filter((r) => r.object === name && r.kind === 'chunk').map((r) => r.bytesReceived);
    expect(bodies.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...bodies)).toBeLessThanOrEqual(2 * K256);
  });

  it('an unaligned partial commit across block boundaries, then a reset: the object is intact', async () => {
    const name = uniqueName('unaligned-blocks');
    ctx.server.inject({ match: { kind: 'chunk', offset: MiB, object: name }, action: { type: 'partial', bytes: 300_000 } });
    ctx.server.inject({ match: { kind: 'chunk', offset: 2 * MiB, object: name }, action: { type: 'reset', afterBytes: 100_000 } });
    const size = 4 * MiB + 77;
    await pipeline(source(size, 64 * KiB), createGcsWriteStream(pooled(name, new MemoryPool(), { adaptiveRequests: false })));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });
});
