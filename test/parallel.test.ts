import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  createGcsWriteStream,
  MemoryPool,
  PermissionDeniedError,
  PreconditionFailedError,
  UploadAbortedError,
  type GcsWriteStreamOptions,
  type ParallelCheckpoint,
} from '../src/index.js';
import { BUCKET, contentAt, K256, sha256, source, streamOptions, temporaryParts, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

function parallelOptions(name: string, extra: Partial<GcsWriteStreamOptions> = {}): GcsWriteStreamOptions {
  return streamOptions(ctx.server, name, { parallel: 3, partSize: K256, ...extra });
}

describe('parallel uploads: sources of one part', () => {
  it('a source of at most partSize bytes becomes one ordinary object, with no temporary objects and no compose', async () => {
    for (const size of [0, 1, K256 - 1, K256]) {
      const name = uniqueName(`small-${size}`);
      const stream = createGcsWriteStream(
        parallelOptions(name, { contentType: 'text/plain', metadata: { cacheControl: 'no-cache', metadata: { k: 'v' } } }),
      );
      const checkpoints: unknown[] = [];
      stream.on('checkpoint', (c) => checkpoints.push(c));
      await pipeline(source(size, 10_000), stream);
      const stored = ctx.server.getObject(BUCKET, name)!;
      expect(sha256(stored.data)).toBe(sha256(contentAt(0, size)));
      expect(stored.resource.contentType).toBe('text/plain');
      expect(stored.resource.cacheControl).toBe('no-cache');
      expect(stored.resource.metadata).toEqual({ k: 'v' });
      expect((stored.resource as unknown as Record<string, unknown>).componentCount).toBeUndefined();
      expect(stream.bytesCommitted).toBe(size);
      expect(stream.leftovers).toEqual([]);
      expect(checkpoints).toEqual([]);
    }
    expect(temporaryParts(ctx.server)).toEqual([]);
    expect(ctx.server.requests.some((r) => r.path.includes('/compose'))).toBe(false);
  });

  it('a declared size of at most partSize is one ordinary object too', async () => {
    const name = uniqueName('small-sized');
    await pipeline(source(K256 - 7, 4096), createGcsWriteStream(parallelOptions(name, { size: K256 - 7 })));
    expect(sha256(ctx.server.getObject(BUCKET, name)!.data)).toBe(sha256(contentAt(0, K256 - 7)));
    expect(temporaryParts(ctx.server)).toEqual([]);
  });
});

/** Resolves with the stream's error (or undefined when it finished). */
async function outcome(stream: ReturnType<typeof createGcsWriteStream>, size: number, writeSize = 64 * 1024): Promise<unknown> {
  return pipeline(source(size, writeSize), stream).then(
    () => undefined,
    (error: unknown) => error,
  );
}

function expectStored(name: string, size: number): void {
  const stored = ctx.server.getObject(BUCKET, name);
  expect(stored, `gs://${BUCKET}/${name}`).toBeDefined();
  expect(stored!.data.length).toBe(size);
  expect(sha256(stored!.data)).toBe(sha256(contentAt(0, size)));
}

describe('parallel uploads: parts and compose', () => {
  it('cuts the source into parts (the last shorter), composes them in order and deletes every temporary object', async () => {
    const name = uniqueName('parts');
    const size = 5 * K256 + 100;
    const stream = createGcsWriteStream(parallelOptions(name, { contentType: 'text/csv', metadata: { metadata: { team: 'x' } } }));
    const checkpoints: ParallelCheckpoint[] = [];
    const progress: number[] = [];
    stream.on('checkpoint', (c) => checkpoints.push(c as ParallelCheckpoint));
    stream.on('progress', (p) => progress.push(p.bytesCommitted));
    expect(await outcome(stream, size, 10_000)).toBeUndefined();
    expectStored(name, size);
    const stored = ctx.server.getObject(BUCKET, name)!;
    expect(stored.resource.contentType).toBe('text/csv');
    expect(stored.resource.metadata).toEqual({ team: 'x' });
    expect(stored.resource.md5Hash).toBeUndefined();
    expect(stream.object?.generation).toBe(stored.resource.generation);
    expect(stream.bytesCommitted).toBe(size);
    expect(stream.leftovers).toEqual([]);
    expect(temporaryParts(ctx.server)).toEqual([]);
    // Progress only grows, and counts the contiguous prefix of stored parts.
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(size);
    // The last checkpoint lists every part, JSON-serializable, named under the prefix and the upload id.
    const last = JSON.parse(JSON.stringify(checkpoints.at(-1))) as ParallelCheckpoint;
    expect(last).toMatchObject({ version: 1, kind: 'parallel', bucket: BUCKET, name, partSize: K256, bytesCommitted: size });
    expect(last.parts.map((p) => [p.index, p.size])).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, i < 5 ? K256 : 100]));
    expect(last.parts[2]!.name).toBe(`gcs-stream-parts/${last.uploadId}/2`);
    expect(last.uploadId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('composes more than 32 parts in tiers of intermediate temporary objects, and deletes those too', async () => {
    const name = uniqueName('tiers');
    const size = 40 * K256 + 3;
    const before = ctx.server.requests.length;
    expect(await outcome(createGcsWriteStream(parallelOptions(name, { parallel: 4 })), size, 100_000)).toBeUndefined();
    expectStored(name, size);
    expect(temporaryParts(ctx.server)).toEqual([]);
    const composes = ctx.server.requests.slice(before).filter((r) => r.method === 'POST' && r.path.includes('/compose'));
    // 41 parts: one intermediate of 32 and one of 9, then the destination from those two.
    expect(composes.length).toBe(3);
    expect(composes.filter((r) => r.path.includes(encodeURIComponent(name))).length).toBe(1);
  });

  it('a source of exactly two parts is two parts, with no empty third', async () => {
    const name = uniqueName('two');
    const checkpoints: ParallelCheckpoint[] = [];
    const stream = createGcsWriteStream(parallelOptions(name));
    stream.on('checkpoint', (c) => checkpoints.push(c as ParallelCheckpoint));
    expect(await outcome(stream, 2 * K256)).toBeUndefined();
    expectStored(name, 2 * K256);
    expect(checkpoints.at(-1)!.parts.map((p) => p.size)).toEqual([K256, K256]);
  });

  it('a declared size longer than one part is cut the same way', async () => {
    const name = uniqueName('declared');
    const size = 3 * K256 + 9;
    expect(await outcome(createGcsWriteStream(parallelOptions(name, { size })), size)).toBeUndefined();
    expectStored(name, size);
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('holds at most (parallel + 1) × partSize of pool memory, the writer waiting while the parts in flight are full', async () => {
    const name = uniqueName('memory');
    const memory = new MemoryPool({ maxBytes: 64 * 1024 * 1024 });
    const partSize = 2 * K256;
    ctx.server.setLatency(5);
    try {
      const stream = createGcsWriteStream(parallelOptions(name, { parallel: 2, partSize, memory }));
      expect(await outcome(stream, 12 * partSize, 256 * 1024)).toBeUndefined();
    } finally {
      ctx.server.setLatency(0);
    }
    expectStored(name, 12 * partSize);
    expect(memory.stats().peakBytesHeld).toBeLessThanOrEqual(3 * partSize);
  });
});

describe('parallel uploads: preconditions on the final object', () => {
  it('ifGenerationMatch 0 against an existing object fails with PreconditionFailedError, leaves it and no temporaries', async () => {
    const name = uniqueName('exists');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('keep me'));
    const error = await outcome(createGcsWriteStream(parallelOptions(name, { ifGenerationMatch: 0 })), 3 * K256);
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as PreconditionFailedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(BUCKET, name)!.resource.generation).toBe(existing.resource.generation);
    expect(ctx.server.getObject(BUCKET, name)!.data.toString()).toBe('keep me');
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('ifGenerationMatch of the live generation replaces it', async () => {
    const name = uniqueName('replace');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('old'));
    const stream = createGcsWriteStream(parallelOptions(name, { ifGenerationMatch: existing.resource.generation }));
    expect(await outcome(stream, 3 * K256 + 1)).toBeUndefined();
    expectStored(name, 3 * K256 + 1);
  });
});

describe('parallel uploads: faults and aborts while parts upload', () => {
  it('a transient fault on a part is retried within that part (retry event), and the object is exact', async () => {
    const name = uniqueName('part-fault');
    ctx.server.inject({ match: { kind: 'final', session: ctx.server.sessionCount + 1 }, action: { type: 'status', status: 503 } });
    const stream = createGcsWriteStream(parallelOptions(name));
    const retries: unknown[] = [];
    stream.on('retry', (event) => retries.push(event));
    expect(await outcome(stream, 4 * K256 + 5)).toBeUndefined();
    expectStored(name, 4 * K256 + 5);
    expect(retries.length).toBeGreaterThan(0);
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('a part that fails for good fails the stream with its typed error: no final object, no temporary object left', async () => {
    const name = uniqueName('part-denied');
    ctx.server.inject({ match: { kind: 'chunk', session: ctx.server.sessionCount + 2 }, action: { type: 'status', status: 403 } });
    const error = await outcome(createGcsWriteStream(parallelOptions(name)), 6 * K256);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('an aborted signal while parts are in flight: UploadAbortedError, no final object, temporary objects deleted', async () => {
    const name = uniqueName('abort-parts');
    const controller = new AbortController();
    const stream = createGcsWriteStream(parallelOptions(name, { signal: controller.signal }));
    stream.on('checkpoint', (c) => {
      if ((c as ParallelCheckpoint).parts.length >= 2) controller.abort();
    });
    const error = await outcome(stream, 20 * K256);
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect((error as UploadAbortedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('destroy() while the first part is held (before any temporary object): nothing is created', async () => {
    const name = uniqueName('destroy-first');
    const stream = createGcsWriteStream(parallelOptions(name));
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.write(contentAt(0, 1000));
    stream.destroy();
    await closed;
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('destroy(error) after parts were stored: the stream errors with UploadAbortedError and deletes them', async () => {
    const name = uniqueName('destroy-parts');
    const stream = createGcsWriteStream(parallelOptions(name));
    const failed = new Promise<unknown>((resolve) => stream.once('error', resolve));
    stream.on('checkpoint', (c) => {
      if ((c as ParallelCheckpoint).parts.length >= 1) stream.destroy(new Error('stop'));
    });
    stream.write(contentAt(0, 5 * K256));
    const error = await failed;
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect((error as UploadAbortedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    expect(temporaryParts(ctx.server)).toEqual([]);
  });
});

describe('parallel uploads: a pool smaller than a part', () => {
  it('a held first part that waits for the pool is uploaded as a temporary part, so that the stream never waits forever', async () => {
    // 1 MiB of pool, 2 MiB parts: the first part cannot be held whole.
    for (const size of [3 * 512 * 1024, 5 * 1024 * 1024 + 3]) {
      const name = uniqueName(`small-pool-${size}`);
      const memory = new MemoryPool({ maxBytes: 1024 * 1024 });
      const stream = createGcsWriteStream(parallelOptions(name, { parallel: 2, partSize: 8 * K256, memory }));
      expect(await outcome(stream, size)).toBeUndefined();
      expectStored(name, size);
      expect(temporaryParts(ctx.server)).toEqual([]);
      expect(memory.stats().bytesLent).toBe(0);
    }
  });
});
