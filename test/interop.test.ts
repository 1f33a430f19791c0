import { Storage } from '@google-cloud/storage';
import { Gaxios } from 'gaxios';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { GoogleAuth, OAuth2Client } from 'google-auth-library';
import { createGcsWriteStream, PreconditionFailedError, type AuthorizedClient, type HttpRequest } from '../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, sha256, source, storedDigest, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

describe('interoperability', () => {
  it('an uploaded object reads back byte-identical through @google-cloud/storage', async () => {
    const name = uniqueName('interop/read back');
    const size = 3 * K256 + 777;
    const stream = createGcsWriteStream({
      bucket: BUCKET,
      name,
      apiEndpoint: ctx.server.url,
      chunkSize: K256,
      contentType: 'text/plain',
      metadata: { cacheControl: 'no-cache', metadata: { origin: 'test' } },
    });
    await pipeline(source(size, 10_000), stream);
    const storage = new Storage({ apiEndpoint: ctx.server.url, projectId: 'test' });
    const file = storage.bucket(BUCKET).file(name);
    const [data] = await file.download();
    expect(sha256(data)).toBe(expectedDigest(size));
    const [metadata] = await file.getMetadata();
    expect(metadata.size).toBe(String(size));
    expect(metadata.contentType).toBe('text/plain');
    expect(metadata.cacheControl).toBe('no-cache');
    expect(metadata.metadata).toEqual({ origin: 'test' });
    expect(metadata.crc32c).toBe(stream.object?.crc32c);
  });

  it('every request, including chunks, status queries and cancel, goes through the given authClient', async () => {
    const name = uniqueName('interop-client');
    const seen: string[] = [];
    const gaxios = new Gaxios();
    const client: AuthorizedClient = {
      request: (options: HttpRequest) => {
        seen.push(`${options.method} ${options.headers['Content-Range'] ?? ''}`.trim());
        return gaxios.request({ ...options, headers: { ...options.headers, 'X-Trace': 'yes' } });
      },
    };
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503 } });
    const stream = createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: ctx.server.url, chunkSize: K256, adaptiveRequests: false, authClient: client, retry: { initialDelayMs: 1, maxDelayMs: 2 } });
    await pipeline(source(2 * K256 + 5, 50_000), stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 5));
    expect(seen[0]).toBe('POST');
    expect(seen).toContain('PUT bytes */*');
    expect(seen.at(-1)).toBe(`PUT bytes ${2 * K256}-${2 * K256 + 4}/${2 * K256 + 5}`);
    const serverSaw = ctx.server.requests.filter((r) => r.trace === 'yes').length;
    expect(serverSaw).toBe(seen.length);
  });

  it('accepts a @google-cloud/storage File: bucket, name, endpoint and its preconditions', async () => {
    const name = uniqueName('interop-file');
    const storage = new Storage({ apiEndpoint: ctx.server.url, projectId: 'test' });
    const file = storage.bucket(BUCKET).file(name, { preconditionOpts: { ifGenerationMatch: 0 } });
    await pipeline(source(K256 + 3, 30_000), createGcsWriteStream({ file, chunkSize: K256 }));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(K256 + 3));
    // The file's ifGenerationMatch: 0 now fails: the object exists.
    const again = createGcsWriteStream({ file, chunkSize: K256 });
    await expect(pipeline(source(10, 10), again)).rejects.toBeInstanceOf(PreconditionFailedError);
    const [exists] = await storage.bucket(BUCKET).file(name).exists();
    expect(exists).toBe(true);
  });

  it('accepts a @google-cloud/storage Storage with bucket and name, and a google-auth-library client as authClient', async () => {
    const name = uniqueName('interop-storage');
    const storage = new Storage({ apiEndpoint: ctx.server.url, projectId: 'test' });
    const oauth = new OAuth2Client();
    oauth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    const typed: AuthorizedClient = oauth; // google-auth-library clients satisfy the interface as they are
    await pipeline(source(1000, 100), createGcsWriteStream({ storage, bucket: BUCKET, name, authClient: typed }));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(1000));
    const auth: AuthorizedClient = new GoogleAuth();
    expect(typeof auth.request).toBe('function');
  });

  it('STORAGE_EMULATOR_HOST is honoured when no apiEndpoint is given, without credentials', async () => {
    const name = uniqueName('emulator-env');
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = ctx.server.url;
    try {
      const stream = createGcsWriteStream({ bucket: BUCKET, name, chunkSize: K256 });
      stream.end(contentAt(0, 1234));
      await new Promise((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(1234));
  });
});
