/**
 * Issue 22, item 2: a window grows beyond two requests only while the thread waits for answers. A fast stream whose
 * event loop is busy (a link that one connection fills, where copying, hashing and socket writes take the CPU; or a
 * process with other work) gains nothing from a larger window, and used to grow it all the same: the session open's
 * answer time read as a long fixed latency (+96 to +133 MiB of RSS on loopback, at the throughput of two chunks).
 *
 * Here every answer is 25 ms late and the source fills a chunk in one write, so the latency alone says "grow", while
 * another task keeps the event loop busy, which no machine load can make idle. (That the window does grow while the
 * loop waits is the pacer's unit test in adaptive.test.ts: end to end it would depend on the machine's load, which
 * makes the loop busy too.)
 */
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createGcsWriteStream } from '../../src/index.js';
import { startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { expectedDigest, K256, MiB, source, storedDigest, streamOptions, uniqueName } from '../helpers.js';

let server: LocalGcs;
beforeAll(async () => {
  server = await startLocalGcs({ latencyMs: 25 });
});
afterAll(async () => {
  await server.close();
});

/** Uploads `size` bytes with a 16-chunk cap; resolves with the largest window target seen at a commit. */
async function largestTarget(name: string, size: number): Promise<number> {
  const stream = createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true, bufferChunks: 16 }));
  let largest = 0;
  stream.on('progress', () => {
    largest = Math.max(largest, stream.memory.targetBytes);
  });
  await pipeline(source(size, MiB), stream);
  expect(storedDigest(server, name)).toBe(expectedDigest(size));
  return largest;
}

it('stays at two requests while the event loop is busy between answers, however long they take', async () => {
  let spinning = true;
  // Busy for 2 ms of every turn of the loop, until the upload ends.
  const spin = (): void => {
    const until = performance.now() + 2;
    while (performance.now() < until);
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  try {
    expect(await largestTarget(uniqueName('grow-busy'), 12 * MiB)).toBeLessThanOrEqual(2 * K256);
  } finally {
    spinning = false;
  }
});
