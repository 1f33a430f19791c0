import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, NetworkError, RetryExhaustedError } from '../../src/index.js';
import { BUCKET, K256, uniqueName, useLocalGcs } from '../helpers.js';

// Found by test/security.test.ts ("network reset on a chunk, for ever"). Fixed in 151be6c; the text below
// describes the behaviour before the fix.
// With an auth client built on gaxios (OAuth2Client, GoogleAuth, Gaxios), a connection reset reaches the session as
// a GaxiosError whose `config` holds the request: the session URL (upload id included) and the chunk body. The
// NetworkError keeps that GaxiosError as its `cause`, so `util.inspect(error)` (what console.error and most loggers
// print) shows the upload id and the first bytes of the object, and the error pins a whole chunk buffer in memory.

const ctx = useLocalGcs();

describe('regression: NetworkError keeps the gaxios request (session URI, chunk body) in its cause chain', () => {
  it('util.inspect of a network failure shows neither the upload id nor object data', async () => {
    const name = uniqueName('leak');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name, times: Infinity }, action: { type: 'reset' } });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'ya29.token', expiry_date: Date.now() + 3_600_000 });
    const stream = createGcsWriteStream({
      bucket: BUCKET,
      name,
      apiEndpoint: ctx.server.url,
      chunkSize: K256,
      adaptiveRequests: false, // the fault aims at the request at offset 256 KiB
      authClient,
      retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 2, stallTimeoutMs: 2_000 },
    });
    const error = await pipeline(Readable.from([Buffer.alloc(3 * K256, 'Z')]), stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).cause).toBeInstanceOf(NetworkError);
    const uploadId = new URL(stream.uploadUri!).searchParams.get('upload_id')!;
    const text = inspect(error, { depth: Infinity });
    expect(text).not.toContain(uploadId);
    expect(text).not.toContain('5a 5a 5a 5a'); // 'ZZZZ' as util.inspect prints a Buffer
  });
});
