import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { GoogleAuth } from 'google-auth-library';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  createGcsAppendStream,
  InvalidArgumentError,
  type GcsAppendStreamOptions,
  type GrpcAuthClient,
  type RetryEvent,
} from '../../src/index.js';
import { APPEND_BUCKET, contentAt, ended, useLocalAppendGcs, written } from '../helpers.js';

// Issue 22, item 6 ("the append path hides the cause"). Before the fix, credentials that could not be obtained ended
// an append stream with only UploadAbortedError (ERR_GCS_UPLOAD_ABORTED), its cause out of sight; an authClient given
// for a loopback endpoint was never asked; and STORAGE_EMULATOR_HOST did not reach the append path: with it set (and
// no gRPC endpoint), a stream went to storage.googleapis.com with the machine's real credentials.

const ctx = useLocalAppendGcs();
const TMP = mkdtempSync(join(tmpdir(), 'gcs-append-credentials-'));
const SCOPES = ['https://www.googleapis.com/auth/devstorage.read_write'];
const ENV = ['STORAGE_EMULATOR_HOST', 'STORAGE_EMULATOR_HOST_GRPC', 'GOOGLE_APPLICATION_CREDENTIALS'] as const;
const saved = Object.fromEntries(ENV.map((key) => [key, process.env[key]]));
afterEach(() => {
  for (const key of ENV) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** Whether this machine reaches 127.0.0.1 through its IPv4-mapped IPv6 address (a loopback the options do not know). */
async function mappedLoopbackWorks(): Promise<boolean> {
  const server = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const socket = connect({ host: '::ffff:127.0.0.1', port: (server.address() as AddressInfo).port });
    return await Promise.race([once(socket, 'connect').then(() => true), once(socket, 'error').then(() => false)]).finally(() =>
      socket.destroy(),
    );
  } finally {
    server.close();
  }
}
const MAPPED_LOOPBACK = await mappedLoopbackWorks();

/** Writes a few bytes through a stream made with `options`; resolves with its error and retry events. */
async function appendWith(options: GcsAppendStreamOptions): Promise<{ error: unknown; retries: RetryEvent[] }> {
  const stream = createGcsAppendStream(options);
  const retries: RetryEvent[] = [];
  stream.on('retry', (event: RetryEvent) => retries.push(event));
  stream.on('error', () => undefined); // the failed write's callback gets it
  const error = await written(stream, Buffer.from('some bytes'))
    .then(() => ended(stream))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  return { error, retries };
}

function expectUnobtainable(error: unknown, retries: RetryEvent[]): AuthenticationError {
  expect(error).toBeInstanceOf(AuthenticationError);
  const failure = error as AuthenticationError;
  expect(failure).toMatchObject({ code: 'ERR_GCS_UPLOAD_UNAUTHENTICATED', reason: 'unobtainable', retryable: false });
  expect(failure.message).toMatch(/^Creating appendable object gs:\/\/zonal-bucket\/\S+ failed before anything was sent/);
  expect(failure.cause).toBeInstanceOf(Error);
  expect(retries).toEqual([]);
  return failure;
}

describe('regression: the append path says why credentials failed', () => {
  it('an authClient whose key file does not exist: AuthenticationError with the cause, nothing sent', async () => {
    const name = 'credentials/missing-key.bin';
    const authClient = new GoogleAuth({ keyFilename: join(TMP, 'no-such-key.json'), scopes: SCOPES }) as unknown as GrpcAuthClient;
    const { error, retries } = await appendWith(ctx.options(name, { authClient }));
    const failure = expectUnobtainable(error, retries);
    expect(failure.message).toContain('ENOENT');
    expect((failure.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(ctx.server.grpc.streams.filter((stream) => stream.object === name)).toEqual([]);
  });

  it('an authClient that throws: its error is the cause', async () => {
    const name = 'credentials/throws.bin';
    const authClient: GrpcAuthClient = {
      getRequestHeaders: () => Promise.reject(Object.assign(new Error('metadata server said no'), { code: 'EACCES' })),
    };
    const { error, retries } = await appendWith(ctx.options(name, { authClient }));
    expect(expectUnobtainable(error, retries).message).toContain('EACCES');
  });

  it("Application Default Credentials from a broken file, for Google's endpoint: AuthenticationError at once, without quoting it", async () => {
    const file = join(TMP, 'broken.json');
    writeFileSync(file, '{"type": "service_account", "private_key": SECRET-KEY-MATERIAL}');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    delete process.env.STORAGE_EMULATOR_HOST;
    delete process.env.STORAGE_EMULATOR_HOST_GRPC;
    // Credentials come before the channel: nothing is sent to storage.googleapis.com.
    const { error, retries } = await appendWith({ bucket: APPEND_BUCKET, name: 'credentials/adc.bin', retry: { initialDelayMs: 1 } });
    const failure = expectUnobtainable(error, retries);
    expect(failure.message).toMatch(/GOOGLE_APPLICATION_CREDENTIALS/);
    expect(inspect(failure, { depth: Infinity })).not.toContain('SECRET');
  });
});

describe('regression: STORAGE_EMULATOR_HOST and the append path', () => {
  it('set alone: the stream refuses to start and names STORAGE_EMULATOR_HOST_GRPC (no request to Google)', () => {
    process.env.STORAGE_EMULATOR_HOST = 'http://127.0.0.1:9000';
    delete process.env.STORAGE_EMULATOR_HOST_GRPC;
    let thrown: unknown;
    try {
      createGcsAppendStream({ bucket: APPEND_BUCKET, name: 'emulator/json-only.bin' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as Error).message).toContain('STORAGE_EMULATOR_HOST_GRPC');
    expect((thrown as Error).message).toContain('"http://127.0.0.1:9000"');
  });

  it('with STORAGE_EMULATOR_HOST_GRPC too: the stream goes there, in plain text, without asking for credentials', async () => {
    const name = 'emulator/grpc.bin';
    process.env.STORAGE_EMULATOR_HOST = 'http://127.0.0.1:9000';
    process.env.STORAGE_EMULATOR_HOST_GRPC = ctx.server.grpc.address;
    // Credentials that would fail if anything asked for them.
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(TMP, 'no-such-adc.json');
    const stream = createGcsAppendStream({ bucket: APPEND_BUCKET, name });
    await written(stream, contentAt(0, 1000));
    await ended(stream);
    expect(ctx.server.getObject(APPEND_BUCKET, name)?.data.equals(contentAt(0, 1000))).toBe(true);
  });

  // Needs a host that is neither loopback to the options nor Google's, yet stays on this machine.
  it.runIf(MAPPED_LOOPBACK)("with a grpcEndpoint other than Google's: plain text, no credentials asked for", async () => {
    const name = 'emulator/explicit.bin';
    process.env.STORAGE_EMULATOR_HOST = 'http://127.0.0.1:9000';
    delete process.env.STORAGE_EMULATOR_HOST_GRPC;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(TMP, 'no-such-adc.json');
    const port = ctx.server.grpc.address.split(':').at(-1)!;
    const stream = createGcsAppendStream(ctx.options(name, { grpcEndpoint: `[::ffff:127.0.0.1]:${port}` }));
    await written(stream, contentAt(0, 1000));
    await ended(stream);
    expect(ctx.server.getObject(APPEND_BUCKET, name)?.data.equals(contentAt(0, 1000))).toBe(true);
  });
});
