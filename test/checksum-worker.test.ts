/**
 * `checksumWorker` (issue 25): the CRC32C of filled blocks computed on a worker thread, through the public API
 * against the local server. The stored object must carry the checksum of every byte written (the server and the
 * stream both check it), every checkpoint the CRC32C of its committed prefix, with the worker and without it (the
 * path of a one-core machine), with MD5 beside it, through the faults that make the window resend or move its
 * bytes, and for parallel parts.
 */
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { CrcWorker } from '../src/core/crc-worker.js';
import { createGcsWriteStream, InvalidArgumentError, type UploadCheckpoint } from '../src/index.js';
import { contentAt, expectedDigest, K256, KiB, MiB, source, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
/** The worker runs only with two cores or more: on one, `checksumWorker: true` hashes everything here. */
const WORKER = availableParallelism() >= 2;

/**
 * Uploads `size` bytes of the test content, in 64 KiB writes unless `write` writes them; returns the stream and every
 * checkpoint it reported.
 */
async function uploadWith(
  name: string,
  size: number,
  extra: Parameters<typeof streamOptions>[2] = {},
  write: (stream: Writable) => Promise<void> = (stream) => pipeline(source(size, 64 * KiB), stream),
) {
  const stream = createGcsWriteStream(streamOptions(ctx.server, name, extra));
  const checkpoints: UploadCheckpoint[] = [];
  stream.on('checkpoint', (checkpoint) => {
    checkpoints.push(checkpoint as UploadCheckpoint);
  });
  await write(stream);
  return { stream, checkpoints };
}

/**
 * Writes `size` bytes of the test content in `writeSize` writes, each awaited; wherever a write ends `pauseAt` bytes
 * into a `period` (a chunk, a part), first waits until the worker has answered every block handed to it, so that
 * the blocks filled so far are answered before the request that needs their checksum can go (without the pause,
 * a machine under load could hash every block on the stream thread first, which is right too, but tests nothing).
 */
async function writePaced(stream: Writable, size: number, writeSize: number, period: number, pauseAt: number): Promise<void> {
  for (let pos = 0; pos < size;) {
    const untilPause = pos % period < pauseAt ? pauseAt - (pos % period) : Infinity;
    const n = Math.min(writeSize, size - pos, untilPause);
    const chunk = contentAt(pos, n);
    await new Promise<void>((resolve, reject) => stream.write(chunk, (error) => (error ? reject(error) : resolve())));
    pos += n;
    if (pos % period === pauseAt) await CrcWorker.shared()?.whenIdle();
  }
  stream.end();
  await finished(stream);
}

/** Every checkpoint's CRC32C is the CRC32C of the content below its committed offset. */
function expectCheckpointCrcs(checkpoints: readonly UploadCheckpoint[]): void {
  const committed = checkpoints.filter((checkpoint) => checkpoint.bytesCommitted > 0);
  expect(committed.length).toBeGreaterThan(0);
  for (const checkpoint of committed) {
    expect(checkpoint.crc32c).toBe(crc32c(contentAt(0, checkpoint.bytesCommitted)) >>> 0);
  }
}

describe('checksumWorker', () => {
  it('refuses a value that is not a boolean before anything is sent', () => {
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { checksumWorker: 1 as unknown as boolean }))).toThrow(
      InvalidArgumentError,
    );
  });

  it('is off unless asked for, and ignored on a machine with one core', async () => {
    const name = uniqueName('default');
    const { stream } = await uploadWith(name, 3 * MiB + 5, { chunkSize: MiB });
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(3 * MiB + 5));
    expect(stream.checksum).toEqual({ worker: false, bytesHashedOnWorker: 0 });
    const asked = createGcsWriteStream(streamOptions(ctx.server, uniqueName('asked'), { checksumWorker: true }));
    expect(asked.checksum.worker).toBe(WORKER);
    asked.destroy();
  });

  it('with it, filled blocks are hashed on the worker and the object and every checkpoint carry the right CRC32C', async () => {
    const name = uniqueName('worker');
    const size = 12 * MiB + 777;
    // Three blocks of every 1 MiB chunk are answered before the chunk can fill and go.
    const { stream, checkpoints } = await uploadWith(name, size, { checksumWorker: true, chunkSize: MiB }, (writable) =>
      writePaced(writable, size, 64 * KiB, MiB, 3 * K256 + 1),
    );
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expectCheckpointCrcs(checkpoints);
    // None can be counted twice.
    expect(stream.checksum.worker).toBe(WORKER);
    expect(stream.checksum.bytesHashedOnWorker).toBeGreaterThanOrEqual(WORKER ? 12 * 3 * K256 : 0);
    expect(stream.checksum.bytesHashedOnWorker).toBeLessThanOrEqual(WORKER ? size - (size % K256) : 0);
    expect(stream.checksum.bytesHashedOnWorker % K256).toBe(0);
  });

  it('without it (the one-core path), every byte is hashed on the stream thread, with the same result', async () => {
    const name = uniqueName('no-worker');
    const size = 6 * MiB + 5;
    const { stream, checkpoints } = await uploadWith(name, size, { checksumWorker: false, chunkSize: MiB });
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expectCheckpointCrcs(checkpoints);
    expect(stream.checksum).toEqual({ worker: false, bytesHashedOnWorker: 0 });
  });

  it("MD5 is still computed from the bytes when the worker gives the CRC32C ('both')", async () => {
    const name = uniqueName('worker-md5');
    const size = 4 * MiB + 1234;
    const { stream } = await uploadWith(name, size, { checksumWorker: true, validation: 'both', chunkSize: MiB }, (writable) =>
      writePaced(writable, size, 64 * KiB, MiB, 3 * K256 + 1),
    );
    // The server compares the final request's crc32c and md5 with what it stored; the stream compares the object's.
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(stream.checksum.bytesHashedOnWorker).toBeGreaterThanOrEqual(WORKER ? 4 * 3 * K256 : 0);
  });

  it.each([
    ['a connection reset mid-request', { type: 'reset' as const, afterBytes: 300 * KiB }],
    [
      'an unaligned partial commit (the window moves its bytes, and the worker answers no longer hold)',
      { type: 'partial' as const, bytes: 700_001 },
    ],
    ['a 503 before anything is persisted', { type: 'status' as const, status: 503 }],
  ])('the object and checkpoints are right after %s', async (_label, action) => {
    const name = uniqueName('worker-fault');
    ctx.server.inject({ match: { kind: 'chunk', object: name, nth: 1 }, action });
    const size = 5 * MiB + 4321;
    const { checkpoints } = await uploadWith(name, size, { checksumWorker: true, chunkSize: MiB });
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expectCheckpointCrcs(checkpoints);
  });

  it('parallel parts are hashed on the worker too, and the composed object carries the CRC32C of every byte', async () => {
    const name = uniqueName('worker-parallel');
    const size = 9 * K256 + 999;
    // The first block of every part is answered before the part fills and goes.
    const { stream } = await uploadWith(name, size, { checksumWorker: true, parallel: 3, partSize: 2 * K256 }, (writable) =>
      writePaced(writable, size, 40 * KiB, 2 * K256, K256 + 1),
    );
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(stream.checksum.bytesHashedOnWorker).toBeGreaterThanOrEqual(WORKER ? 4 * K256 : 0);
  });
});
