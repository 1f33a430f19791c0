/**
 * `retainWrites` (issue 25): written Buffers kept by reference instead of copied, through the public API against the
 * local server. The pool counts what a stream holds either way (`bytesReferenced` for kept bytes, pool blocks for
 * copied ones), writers that reuse their buffers keep working without the option, a writer that changes a kept
 * buffer gets a checksum error and no object, and kept bytes survive every resend (faults, an unaligned commit that
 * makes the window move its bytes, parallel parts).
 */
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ChecksumMismatchError, createGcsWriteStream, InvalidArgumentError, MemoryPool } from '../src/index.js';
import {
  BUCKET,
  contentAt,
  ended,
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

/** The content at `pos`, `n` bytes, in a buffer that is all of its own memory (as file and socket reads give). */
function fresh(pos: number, n: number): Buffer {
  const buffer = Buffer.allocUnsafeSlow(n);
  contentAt(pos, n).copy(buffer);
  return buffer;
}

describe('retainWrites', () => {
  it('refuses a value that is not a boolean before anything is sent', () => {
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { retainWrites: 'yes' as unknown as boolean }))).toThrow(
      InvalidArgumentError,
    );
  });

  it('holds written Buffers by reference: the pool counts their bytes exactly and allocates no block for them', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('retain-count');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { retainWrites: true, memory: pool, bufferChunks: 4 }));
    // Buffers of their own (Buffer.allocUnsafe takes small ones from Node's shared pool: under 32 KiB on Node 24).
    const writes = [fresh(0, 64 * KiB), fresh(64 * KiB, 100 * KiB), fresh(164 * KiB, 20 * KiB)];
    for (const data of writes) await written(stream, data);
    // 184 KiB, less than a block: nothing can be sent yet, so everything is held.
    expect(pool.stats()).toMatchObject({ bytesReferenced: 184 * KiB, bytesHeld: 0, bytesLent: K256 });
    // A write under 4 KiB is copied: the block's slot gets its pool buffer.
    const small = contentAt(184 * KiB, 1000);
    await written(stream, small);
    expect(pool.stats()).toMatchObject({ bytesReferenced: 184 * KiB, bytesHeld: K256, bytesLent: K256 });
    await ended(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(184 * KiB + 1000));
    expect(pool.stats()).toMatchObject({ bytesReferenced: 0, bytesLent: 0, streams: 0 });
    expect(pool.stats().peakBytesHeld).toBe(184 * KiB + K256);
  });

  it('without it the same writes are copied into pool blocks and nothing is held by reference', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('copy-count');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { memory: pool, bufferChunks: 4 }));
    await written(stream, contentAt(0, 64 * KiB));
    await written(stream, contentAt(64 * KiB, 120 * KiB));
    expect(pool.stats()).toMatchObject({ bytesReferenced: 0, bytesHeld: K256, bytesLent: K256 });
    await ended(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(184 * KiB));
  });

  it('copies a small view of a large buffer (keeping it would keep the whole buffer alive)', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('retain-view');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { retainWrites: true, memory: pool }));
    const large = contentAt(0, MiB);
    await written(stream, large.subarray(0, 100 * KiB));
    expect(pool.stats()).toMatchObject({ bytesReferenced: 0, bytesHeld: K256 });
    // Half of its buffer or more: kept.
    const half = contentAt(100 * KiB, 128 * KiB);
    await written(stream, Buffer.from(half.buffer, half.byteOffset, 64 * KiB));
    expect(pool.stats().bytesReferenced).toBe(64 * KiB);
    await ended(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(164 * KiB));
  });

  it('without it, a writer that reuses one buffer for every write stores each write as it was', async () => {
    const name = uniqueName('reused-buffer');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    const buffer = Buffer.alloc(64 * KiB);
    const size = 2 * MiB + 5 * KiB;
    for (let at = 0; at < size; at += buffer.length) {
      const n = Math.min(buffer.length, size - at);
      contentAt(at, n).copy(buffer);
      // Each write's callback means the bytes are the stream's: the buffer is refilled at once.
      await written(stream, n === buffer.length ? buffer : buffer.subarray(0, n));
    }
    await ended(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });

  it('with it, a buffer changed after write() fails the upload with ChecksumMismatchError and stores nothing', async () => {
    const name = uniqueName('retain-misuse');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { retainWrites: true, bufferChunks: 4 }));
    const first = contentAt(0, 64 * KiB);
    await written(stream, first);
    await written(stream, contentAt(64 * KiB, 64 * KiB));
    // The stream still holds `first` (less than a block was written): the writer breaks the contract.
    first.fill(0x55);
    const failure = await ended(stream).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ChecksumMismatchError);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });

  it.each([
    ['a connection reset mid-request', { type: 'reset' as const, afterBytes: 100 * KiB }],
    ['an unaligned partial commit (the window moves its kept bytes)', { type: 'partial' as const, bytes: 100_000 }],
    ['a 503 before anything is persisted', { type: 'status' as const, status: 503 }],
  ])('kept bytes are resent intact after %s', async (_label, action) => {
    const pool = new MemoryPool();
    const name = uniqueName('retain-fault');
    ctx.server.inject({ match: { kind: 'chunk', object: name, nth: 1 }, action });
    const size = 3 * MiB + 777;
    await pipeline(source(size, 48 * KiB), createGcsWriteStream(streamOptions(ctx.server, name, { retainWrites: true, memory: pool })));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(pool.stats()).toMatchObject({ bytesReferenced: 0, bytesLent: 0 });
  });

  it('parallel parts keep their writes too, and the composed object is intact', async () => {
    const pool = new MemoryPool();
    const name = uniqueName('retain-parallel');
    const size = 5 * K256 + 999;
    const options = streamOptions(ctx.server, name, { retainWrites: true, memory: pool, parallel: 2, partSize: 2 * K256 });
    await pipeline(source(size, 40 * KiB), createGcsWriteStream(options));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(pool.stats()).toMatchObject({ bytesReferenced: 0, bytesLent: 0 });
    expect(pool.stats().peakBytesHeld).toBeGreaterThan(0);
  });
});
