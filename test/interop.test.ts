import { Storage as Storage8 } from '@google-cloud/storage';
import { Storage as Storage7 } from '@google-cloud/storage-v7';
import { Gaxios } from 'gaxios';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { GoogleAuth, OAuth2Client, type gaxios as AuthGaxios } from 'google-auth-library';
import { createGcsWriteStream, PreconditionFailedError, type AuthorizedClient, type HttpRequest } from '../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, sha256, source, storedDigest, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

type GoogleAuthLibrary = typeof import('google-auth-library');
type GaxiosLibrary = typeof import('gaxios');

/** A package as installed where `from` would load it (a dependency of `from`, not of this project). */
function requireFrom(from: string): NodeJS.Require {
  return createRequire(createRequire(import.meta.url).resolve(from));
}

function versionOf(resolvedEntry: string, name: string): string {
  for (let dir = dirname(resolvedEntry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === name && manifest.version !== undefined) return manifest.version;
    } catch {
      // no package.json at this level
    }
  }
  throw new Error(`no package.json of ${name} above ${resolvedEntry}`);
}

/**
 * Both majors of `@google-cloud/storage` the library supports, each with the google-auth-library and gaxios it
 * brings: their auth clients are what `file` and `storage` hand over.
 */
const STORAGE_MAJORS = [
  { major: 8, Storage: Storage8, from: '@google-cloud/storage', minNode: 22 }, // its engines: node >=22
  { major: 7, Storage: Storage7, from: '@google-cloud/storage-v7', minNode: 20 },
].map((entry) => {
  const require = requireFrom(entry.from);
  const authRequire = createRequire(require.resolve('google-auth-library'));
  return {
    ...entry,
    version: versionOf(createRequire(import.meta.url).resolve(entry.from), '@google-cloud/storage'),
    authVersion: versionOf(require.resolve('google-auth-library'), 'google-auth-library'),
    gaxiosVersion: versionOf(authRequire.resolve('gaxios'), 'gaxios'),
    auth: require('google-auth-library') as GoogleAuthLibrary,
    gaxios: authRequire('gaxios') as GaxiosLibrary,
  };
});

describe.each(STORAGE_MAJORS)('interoperability with @google-cloud/storage $major', (storage) => {
  const newStorage = (options: Record<string, unknown> = {}): InstanceType<typeof Storage8> =>
    new storage.Storage({ apiEndpoint: ctx.server.url, projectId: 'test', ...options }) as InstanceType<typeof Storage8>;

  it('is the major the test means', () => {
    expect(Number(storage.version.split('.')[0])).toBe(storage.major);
    console.log(`@google-cloud/storage ${storage.version}, google-auth-library ${storage.authVersion}, gaxios ${storage.gaxiosVersion}`);
  });

  it.skipIf(NODE_MAJOR < storage.minNode)('an uploaded object reads back byte-identical through it', async () => {
    const name = uniqueName(`interop-${storage.major}/read back`);
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
    const file = newStorage().bucket(BUCKET).file(name);
    const [data] = await file.download();
    expect(sha256(data)).toBe(expectedDigest(size));
    const [metadata] = await file.getMetadata();
    expect(metadata.size).toBe(String(size));
    expect(metadata.contentType).toBe('text/plain');
    expect(metadata.cacheControl).toBe('no-cache');
    expect(metadata.metadata).toEqual({ origin: 'test' });
    expect(metadata.crc32c).toBe(stream.object?.crc32c);
  });

  it.skipIf(NODE_MAJOR < storage.minNode)('accepts a File: bucket, name, endpoint and its preconditions', async () => {
    const name = uniqueName(`interop-${storage.major}-file`);
    const client = newStorage();
    const file = client.bucket(BUCKET).file(name, { preconditionOpts: { ifGenerationMatch: 0 } });
    await pipeline(source(K256 + 3, 30_000), createGcsWriteStream({ file, chunkSize: K256 }));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(K256 + 3));
    // The file's ifGenerationMatch: 0 now fails: the object exists.
    const again = createGcsWriteStream({ file, chunkSize: K256 });
    await expect(pipeline(source(10, 10), again)).rejects.toBeInstanceOf(PreconditionFailedError);
    const [exists] = await client.bucket(BUCKET).file(name).exists();
    expect(exists).toBe(true);
  });

  it.skipIf(NODE_MAJOR < storage.minNode)("takes a Storage's own auth client, which performs every request", async () => {
    const name = uniqueName(`interop-${storage.major}-storage`);
    const requests: string[] = [];
    // The google-auth-library this @google-cloud/storage brings, as an application would configure it; the subclass
    // only counts what passes through it.
    class CountingAuth extends storage.auth.GoogleAuth {
      override request<T>(options: AuthGaxios.GaxiosOptions): Promise<AuthGaxios.GaxiosResponse<T>> {
        requests.push(String(options.method));
        return super.request<T>(options);
      }
    }
    const oauth = new storage.auth.OAuth2Client();
    oauth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    // A custom endpoint keeps the default (unauthenticated) client unless the Storage authenticates there too.
    const client = newStorage({ authClient: new CountingAuth({ authClient: oauth }), useAuthWithCustomEndpoint: true });
    expect(client.authClient).toBeInstanceOf(CountingAuth);
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503 } });
    await pipeline(
      source(2 * K256 + 5, 50_000),
      createGcsWriteStream({
        storage: client,
        bucket: BUCKET,
        name,
        chunkSize: K256,
        adaptiveRequests: false,
        retry: { initialDelayMs: 1, maxDelayMs: 2 },
      }),
    );
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 5));
    // Every request the server saw for the object, the status query after the 503 included, came through it.
    const seen = ctx.server.requests.filter((r) => r.object === name);
    expect(seen.map((r) => r.kind)).toContain('query');
    expect(requests[0]).toBe('POST');
    expect(requests.length).toBe(seen.length);
  });

  it.skipIf(NODE_MAJOR < storage.minNode)(
    'works with an auth client whose gaxios uses its own transport: response headers as that gaxios shapes them',
    async () => {
      const name = uniqueName(`interop-${storage.major}-own-transport`);
      const gaxios = new storage.gaxios.Gaxios();
      let headerShape = '';
      // A wrapper that drops the library's transport (`adapter`): gaxios 6 then answers with a plain header object,
      // gaxios 7 and 8 with a Fetch `Headers`.
      const client: AuthorizedClient = {
        request: async (options: HttpRequest) => {
          const own: HttpRequest = { ...options };
          delete (own as { adapter?: unknown }).adapter;
          const response = await gaxios.request(own);
          // By its tag: the Headers of gaxios's fetch is not always the global class.
          headerShape = Object.prototype.toString.call(response.headers);
          return response;
        },
      };
      const stream = createGcsWriteStream({
        bucket: BUCKET,
        name,
        apiEndpoint: ctx.server.url,
        chunkSize: K256,
        adaptiveRequests: false,
        authClient: client,
      });
      // The session URI comes from `Location`, each chunk's committed offset from the `Range` of its 308.
      await pipeline(source(2 * K256 + 5, 50_000), stream);
      expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 5));
      expect(headerShape).toBe(storage.gaxiosVersion.startsWith('6.') ? '[object Object]' : '[object Headers]');
    },
  );
});

describe('interoperability with auth clients', () => {
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
    const stream = createGcsWriteStream({
      bucket: BUCKET,
      name,
      apiEndpoint: ctx.server.url,
      chunkSize: K256,
      adaptiveRequests: false,
      authClient: client,
      retry: { initialDelayMs: 1, maxDelayMs: 2 },
    });
    await pipeline(source(2 * K256 + 5, 50_000), stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 5));
    expect(seen[0]).toBe('POST');
    expect(seen).toContain('PUT bytes */*');
    expect(seen.at(-1)).toBe(`PUT bytes ${2 * K256}-${2 * K256 + 4}/${2 * K256 + 5}`);
    const serverSaw = ctx.server.requests.filter((r) => r.trace === 'yes').length;
    expect(serverSaw).toBe(seen.length);
  });

  it('google-auth-library clients satisfy AuthorizedClient as they are', async () => {
    const name = uniqueName('interop-oauth');
    const oauth = new OAuth2Client();
    oauth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    const typed: AuthorizedClient = oauth;
    await pipeline(source(1000, 100), createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: ctx.server.url, authClient: typed }));
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
      await new Promise<void>((resolve, reject) => stream.on('finish', () => resolve()).on('error', reject));
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(1234));
  });
});
