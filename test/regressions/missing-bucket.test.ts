import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketNotFoundError, createGcsWriteStream } from '../../src/index.js';
import { startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { contentAt, expectedDigest, K256, sha256, streamOptions, uniqueName } from '../helpers.js';

// Issue 22, item 6: an upload into a bucket that does not exist failed with a generic 404 and raw JSON. GCS answers
// the open with 404, reason notFound, "The specified bucket does not exist."; the local server now does too (for
// the buckets it was not given), and the stream says what it means.

let server: LocalGcs;
beforeAll(async () => {
  server = await startLocalGcs({ buckets: ['present-bucket'] });
});
afterAll(async () => {
  await server.close();
});

describe('a bucket that does not exist', () => {
  it('the local server answers the open as GCS does', async () => {
    const response = await fetch(`${server.url}/upload/storage/v1/b/absent-bucket/o?uploadType=resumable&name=x`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: {
        code: 404,
        message: 'The specified bucket does not exist.',
        errors: [{ message: 'The specified bucket does not exist.', domain: 'global', reason: 'notFound' }],
      },
    });
  });

  it('fails the stream with BucketNotFoundError saying so, after one request and without raw JSON', async () => {
    const name = uniqueName('no-bucket');
    const stream = createGcsWriteStream(streamOptions(server, name, { bucket: 'absent-bucket', retry: { maxAttempts: 5 } }));
    const error = await pipeline([contentAt(0, 1000)], stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BucketNotFoundError);
    expect((error as BucketNotFoundError).code).toBe('ERR_GCS_UPLOAD_BUCKET_NOT_FOUND');
    expect((error as BucketNotFoundError).status).toBe(404);
    expect((error as Error).message).toContain('HTTP 404: the bucket does not exist');
    expect((error as Error).message).toContain('gs://absent-bucket/');
    expect((error as Error).message).not.toContain('{');
    expect(server.requests.filter((request) => request.path.includes(name))).toHaveLength(1);
  });

  it('once created, the same upload goes through', async () => {
    server.createBucket('later-bucket');
    const name = uniqueName('created-bucket');
    const size = K256 + 1;
    await pipeline([contentAt(0, size)], createGcsWriteStream(streamOptions(server, name, { bucket: 'later-bucket' })));
    const stored = server.getObject('later-bucket', name);
    expect(stored === undefined ? undefined : sha256(stored.data)).toBe(expectedDigest(size));
  });
});
