import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../src/index.js';
import { contentAt, expectedDigest, K256, KiB, MiB, storedDigest, streamOptions, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const CHUNK = K256;

// Object sizes around every boundary the protocol cares about, with 256 KiB chunks.
const SIZES: Array<[string, number]> = [
  ['empty', 0],
  ['1 byte', 1],
  ['256 KiB - 1', K256 - 1],
  ['exactly one chunk', CHUNK],
  ['one chunk + 1', CHUNK + 1],
  ['exactly 4 chunks', 4 * CHUNK],
  ['4 chunks + 1 byte', 4 * CHUNK + 1],
];
const WRITE_SIZES = [1, 1000, 64 * KiB, 3 * MiB];

describe('object sizes x write sizes', () => {
  for (const [label, size] of SIZES) {
    for (const writeSize of WRITE_SIZES) {
      if (writeSize === 1 && size > 2 * CHUNK) continue; // 1-byte writes: covered up to 512 KiB to keep the suite fast
      it(`${label} (${size} bytes) in ${writeSize}-byte writes`, async () => {
        const name = uniqueName('size');
        const { error, stream } = await upload(ctx.server, name, size, writeSize, { chunkSize: CHUNK });
        expect(error).toBeUndefined();
        expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
        expect(stream.object?.size).toBe(String(size));
        expect(stream.bytesCommitted).toBe(size);
      });
    }
  }

  it('~50 MiB with the default 8 MiB chunks and random write sizes', async () => {
    const name = uniqueName('big');
    const size = 50 * MiB + 12_345;
    let seed = 7;
    const randomWrite = (): number => {
      seed = (seed * 48271) % 2147483647;
      return 1 + (seed % (2 * MiB));
    };
    const { error } = await upload(ctx.server, name, size, randomWrite, { chunkSize: undefined });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });

  it('a total that is an exact multiple of the chunk ends with the last data request carrying the total', async () => {
    const name = uniqueName('multiple');
    const { error } = await upload(ctx.server, name, 3 * CHUNK, 64 * KiB, { chunkSize: CHUNK });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(3 * CHUNK));
    const ranges = ctx.server.requests.filter((r) => r.object === name && r.contentRange !== undefined).map((r) => r.contentRange);
    expect(ranges).toEqual([
      `bytes 0-${CHUNK - 1}/*`,
      `bytes ${CHUNK}-${2 * CHUNK - 1}/*`,
      `bytes ${2 * CHUNK}-${3 * CHUNK - 1}/${3 * CHUNK}`,
    ]);
  });

  it('with one chunk buffer, a multiple of the chunk is sent as it fills and finalized with bytes */TOTAL', async () => {
    const name = uniqueName('multiple-one-buffer');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize: CHUNK, bufferChunks: 1 }));
    stream.write(contentAt(0, 3 * CHUNK));
    // Every full chunk is committed before end(): only the total is left to send.
    await new Promise<void>((resolve) => stream.on('progress', (p) => p.bytesCommitted === 3 * CHUNK && resolve()));
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(3 * CHUNK));
    const ranges = ctx.server.requests.filter((r) => r.object === name && r.contentRange !== undefined).map((r) => r.contentRange);
    expect(ranges).toEqual([
      `bytes 0-${CHUNK - 1}/*`,
      `bytes ${CHUNK}-${2 * CHUNK - 1}/*`,
      `bytes ${2 * CHUNK}-${3 * CHUNK - 1}/*`,
      `bytes */${3 * CHUNK}`,
    ]);
  });
});
