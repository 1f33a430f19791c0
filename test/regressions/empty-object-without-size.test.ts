import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream, ProtocolError, type GcsResumableWritable, type Validation } from '../../src/index.js';
import { startBareGcs, type BareGcs } from '../fixtures/bare-gcs.js';
import { BUCKET, FAST_RETRY, K256, uniqueName } from '../helpers.js';

// Issue 12, defect 8. storage-testbench, Google's own conformance server, writes its JSON from protobuf messages,
// and proto3 JSON leaves out fields holding zero: the object resource that completes an empty upload has no `size`
// (and, as the CRC32C of nothing is 0, maybe no crc32c either). Before the fix the stream took that for a malformed
// answer (ProtocolError: "is not an object resource") and failed, although the object was exactly right.

const EMPTY_CRC32C = 'AAAAAA==';
const EMPTY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';

/** Which fields the server leaves out of every object resource it sends. */
let omit: readonly string[] = [];
/** Fields the server sets in those resources (after leaving out `omit`). */
let override: Record<string, string> = {};
let server: BareGcs;
beforeAll(async () => {
  server = await startBareGcs({
    objectResource: (resource) => {
      const answer: Record<string, unknown> = { ...resource, ...override };
      for (const field of omit) delete answer[field];
      return answer;
    },
  });
});
afterAll(() => server.close());

async function uploadEmpty(name: string, validation: Validation = 'crc32c'): Promise<{ stream: GcsResumableWritable; error: unknown }> {
  const stream = createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: server.url, chunkSize: K256, validation, retry: FAST_RETRY });
  const error = await pipeline(Readable.from([]), stream).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { stream, error };
}

describe('regression: an empty object whose final answer has no size', () => {
  it('no size and no crc32c, as proto3 JSON writes it: finishes with size "0"', async () => {
    omit = ['size', 'crc32c'];
    override = {};
    const name = uniqueName('empty-proto3');
    const { stream, error } = await uploadEmpty(name, 'both');
    expect(error).toBeUndefined();
    expect(stream.object).toMatchObject({ name, size: '0', md5Hash: EMPTY_MD5 });
    expect(server.objects.get(`${BUCKET}/${name}`)?.data.length).toBe(0);
  });

  it('no size, with the CRC32C of nothing: finishes with size "0"', async () => {
    omit = ['size'];
    override = {};
    const name = uniqueName('empty-crc');
    const { stream, error } = await uploadEmpty(name);
    expect(error).toBeUndefined();
    expect(stream.object).toMatchObject({ size: '0', crc32c: EMPTY_CRC32C });
  });

  it('no size and no checksums at all: zero bytes were sent, so it finishes with size "0"', async () => {
    omit = ['size', 'crc32c', 'md5Hash'];
    override = {};
    const name = uniqueName('empty-bare');
    const { stream, error } = await uploadEmpty(name, false);
    expect(error).toBeUndefined();
    expect(stream.object?.size).toBe('0');
  });

  it('no size with the checksum of something else is still a protocol violation', async () => {
    omit = ['size'];
    override = { crc32c: 'yZRlqg==' }; // the CRC32C of "hello world", not of nothing
    const { stream, error } = await uploadEmpty(uniqueName('empty-contradiction'));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(stream.object).toBeUndefined();
  });
});
