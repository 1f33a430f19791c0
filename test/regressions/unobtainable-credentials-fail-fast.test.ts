import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import { GoogleAuth, OAuth2Client } from 'google-auth-library';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  createGcsWriteStream,
  HttpStatusError,
  NetworkError,
  RetryExhaustedError,
  type AuthorizedClient,
  type RetryEvent,
} from '../../src/index.js';
import { BUCKET, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Issue 12, defect 5. Before the fix, a failure to obtain credentials (a key file that does not exist, ADC pointing
// at a broken file, a token endpoint refusing the grant) left the session's request without a response and without
// a network error, and was classified as a NetworkError: retried with backoff until the budget was spent (about
// 65 s with the defaults), then reported as RetryExhaustedError(NetworkError), or, for a token endpoint's 400, as an
// HTTP 400 of the upload itself.

const ctx = useLocalGcs();
const TMP = mkdtempSync(join(tmpdir(), 'gcs-credentials-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const SCOPES = ['https://www.googleapis.com/auth/devstorage.read_write'];
/** Plenty of attempts, at once: a credentials failure that is retried shows up as retry events, not as slowness. */
const RETRY = { maxAttempts: 4, initialDelayMs: 1, maxDelayMs: 2 };

interface Attempt {
  error: unknown;
  retries: RetryEvent[];
}

/** Uploads a few bytes to `name` through `authClient`; resolves with the error and the retry events. */
async function uploadWith(authClient: AuthorizedClient, name: string, retry: object = RETRY): Promise<Attempt> {
  const stream = createGcsWriteStream(streamOptions(ctx.server, name, { authClient, retry }));
  const retries: RetryEvent[] = [];
  stream.on('retry', (event) => retries.push(event));
  const error = await pipeline(Readable.from([Buffer.from('some bytes')]), stream).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, retries };
}

/** The upload failed at once with an AuthenticationError for unobtainable credentials, and nothing was sent. */
function expectUnobtainable({ error, retries }: Attempt, name: string): AuthenticationError {
  expect(error).toBeInstanceOf(AuthenticationError);
  const failure = error as AuthenticationError;
  expect(failure.reason).toBe('unobtainable');
  expect(failure.retryable).toBe(false);
  expect(failure.status).toBeUndefined();
  expect(failure.message).toMatch(/credentials could not be obtained/);
  expect(failure.message).toMatch(/GOOGLE_APPLICATION_CREDENTIALS/);
  expect(failure.message).toMatch(/authClient/);
  expect(retries).toEqual([]);
  expect(ctx.server.requests.filter((request) => request.object === name)).toEqual([]);
  expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  return failure;
}

/** A token endpoint on 127.0.0.1 that answers every request with `status` and an OAuth error body. */
async function tokenEndpoint(status: number): Promise<{ url: string; hits: () => number; server: Server }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, hits: () => hits, server };
}

/** A 127.0.0.1 port with nothing listening on it (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** An OAuth2 client that holds only a refresh token, so that its first request asks `tokenUrl` for an access token. */
function refreshingClient(tokenUrl: string): OAuth2Client {
  const client = new OAuth2Client({ clientId: 'client-id', clientSecret: 'client-secret', endpoints: { oauth2TokenUrl: tokenUrl } });
  client.setCredentials({ refresh_token: 'REFRESH-TOKEN-SECRET' });
  return client;
}

describe('regression: credentials that cannot be obtained fail at once with AuthenticationError', () => {
  it('a GoogleAuth whose keyFilename does not exist', async () => {
    const name = uniqueName('missing-key');
    const authClient = new GoogleAuth({ keyFilename: join(TMP, 'no-such-key.json'), scopes: SCOPES });
    const failure = expectUnobtainable(await uploadWith(authClient, name), name);
    expect(failure.message).toContain('ENOENT');
  });

  it('Application Default Credentials whose GOOGLE_APPLICATION_CREDENTIALS file is not valid JSON, without quoting it', async () => {
    const name = uniqueName('broken-adc');
    const file = join(TMP, 'broken.json');
    // JSON.parse's message quotes the text around the error: here, the start of the key.
    writeFileSync(file, '{"type": "service_account", "private_key": SECRET-KEY-MATERIAL}');
    const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    let attempt: Attempt;
    try {
      attempt = await uploadWith(new GoogleAuth({ scopes: SCOPES }), name);
    } finally {
      if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
    }
    const failure = expectUnobtainable(attempt, name);
    expect(inspect(failure, { depth: Infinity })).not.toContain('SECRET');
  });

  it('a token endpoint that refuses the grant (400 invalid_grant) is not an HTTP error of the upload', async () => {
    const name = uniqueName('invalid-grant');
    const endpoint = await tokenEndpoint(400);
    try {
      const failure = expectUnobtainable(await uploadWith(refreshingClient(endpoint.url), name), name);
      expect(failure.message).toContain('invalid_grant');
      expect(inspect(failure, { depth: Infinity })).not.toContain('REFRESH-TOKEN-SECRET');
      expect(endpoint.hits()).toBe(1);
    } finally {
      endpoint.server.close();
    }
  });

  it('a token endpoint that cannot be reached is network trouble: retried', async () => {
    const name = uniqueName('token-unreachable');
    const port = await closedPort();
    const { error, retries } = await uploadWith(refreshingClient(`http://127.0.0.1:${port}/token`), name, { ...RETRY, maxAttempts: 2 });
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).cause).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(NetworkError);
    expect(ctx.server.requests.filter((request) => request.object === name)).toEqual([]);
  });

  it('a token endpoint that answers 503 is a transient condition: retryable', async () => {
    const name = uniqueName('token-503');
    const endpoint = await tokenEndpoint(503);
    try {
      // One attempt, and time for it: google-auth-library itself retries its token request three times (about 2 s).
      const { error } = await uploadWith(refreshingClient(endpoint.url), name, { ...RETRY, maxAttempts: 1, stallTimeoutMs: 30_000 });
      expect(error).toBeInstanceOf(RetryExhaustedError);
      const cause = (error as RetryExhaustedError).cause as HttpStatusError;
      expect(cause).toBeInstanceOf(HttpStatusError);
      expect({ status: cause.status, retryable: cause.retryable }).toEqual({ status: 503, retryable: true });
      expect(cause.message).toMatch(/obtaining credentials failed with HTTP 503/);
      expect(ctx.server.requests.filter((request) => request.object === name)).toEqual([]);
    } finally {
      endpoint.server.close();
    }
  });

  it('a GoogleAuth keyFilename that is not JSON: google-auth-library sends no credentials, and the 401 from GCS is not retried', async () => {
    // google-auth-library takes a keyFilename it cannot parse as JSON for a PEM or PKCS#12 key and then sends
    // requests without an Authorization header (it never reads the file again): the failure is GCS's 401. This was
    // already an AuthenticationError before the fix; only `reason` is new.
    const name = uniqueName('key-not-json');
    const file = join(TMP, 'not-json.json');
    writeFileSync(file, 'not a key');
    ctx.server.inject({ match: { kind: 'open', object: name }, action: { type: 'status', status: 401 } });
    const { error, retries } = await uploadWith(new GoogleAuth({ keyFilename: file, scopes: SCOPES }), name);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).reason).toBe('rejected');
    expect((error as AuthenticationError).status).toBe(401);
    expect(retries).toEqual([]);
  });
});
