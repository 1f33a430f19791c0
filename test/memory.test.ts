import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../src/index.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';
import { BUCKET, measurePeakMemory, MiB, source } from './helpers.js';

let server: LocalGcs;
beforeAll(async () => {
  // The server keeps only size and checksums, so that what grows is the client.
  server = await startLocalGcs({ discardData: true });
});
afterAll(async () => {
  await server.close();
});

describe('memory bound', () => {
  it('256 MiB through 8 MiB chunks grows memory by far less than the object size', async () => {
    const size = 256 * MiB;
    const chunkSize = 8 * MiB;
    const stream = createGcsWriteStream({ bucket: BUCKET, name: 'memory-bound', apiEndpoint: server.url, chunkSize });
    const { rssGrowth, bufferGrowth } = await measurePeakMemory(() => pipeline(source(size, 64 * 1024), stream));
    expect(stream.object?.size).toBe(String(size));
    console.log(
      `memory bound: object ${size / MiB} MiB, chunk ${chunkSize / MiB} MiB, peak RSS growth ${(rssGrowth / MiB).toFixed(1)} MiB, ` +
        `peak ArrayBuffer growth ${(bufferGrowth / MiB).toFixed(1)} MiB`,
    );
    // Two chunk buffers (16 MiB) plus transport and server buffers; nowhere near the 256 MiB object.
    expect(bufferGrowth).toBeLessThan(64 * MiB);
    expect(rssGrowth).toBeLessThan(96 * MiB);
  });
});
