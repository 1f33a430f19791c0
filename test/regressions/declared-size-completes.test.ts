import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../../src/index.js';
import {
  BUCKET,
  contentAt,
  expectedDigest,
  K256,
  KiB,
  storedDigest,
  streamOptions,
  uniqueName,
  upload,
  useLocalGcs,
  written,
} from '../helpers.js';

// Defect 1 of issue 12. A session opened with X-Upload-Content-Length completes as soon as that many bytes have
// arrived, even on a request that says `bytes A-B/*` (GCS and storage-testbench do; so does the local server now).
// When the last chunk went out before `end()` was known, the stream took the 200 for a premature finalize, deleted
// the new generation and failed: the user's object (and any older one of that name) was gone.

const ctx = useLocalGcs();

function rangesOf(name: string): string[] {
  return ctx.server.requests.filter((r) => r.object === name && r.contentRange !== undefined).map((r) => r.contentRange!);
}

describe('a declared size', () => {
  it('bufferChunks 1, a size that is a multiple of the chunk: the object is stored and an older one replaced, not deleted', async () => {
    const name = uniqueName('declared-one-chunk');
    const size = 4 * K256;
    ctx.server.putObject(BUCKET, name, Buffer.from('the old generation'));
    const { error } = await upload(ctx.server, name, size, 64 * KiB, { size, bufferChunks: 1 });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    // Every Content-Range of the session says the total.
    const ranges = rangesOf(name);
    expect(ranges.length).toBeGreaterThan(0);
    for (const range of ranges) expect(range).toMatch(new RegExp(`/${size}$`));
  });

  it('one full chunk, end() after the write callback: the request that reaches the size is the final one', async () => {
    const name = uniqueName('declared-late-end');
    const size = K256;
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { size, bufferChunks: 1 }));
    await written(stream, contentAt(0, size));
    stream.end();
    await once(stream, 'finish');
    expect(stream.object?.size).toBe(String(size));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    expect(rangesOf(name)).toEqual([`bytes 0-${size - 1}/${size}`]);
  });

  it('an unaligned size through adaptive whole-window requests', async () => {
    const name = uniqueName('declared-adaptive');
    const size = 3 * K256 + 7;
    const { error } = await upload(ctx.server, name, size, 64 * KiB, { size, bufferChunks: 4, adaptiveRequests: true });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });
});
