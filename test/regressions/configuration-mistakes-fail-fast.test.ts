import { createServer } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, NetworkError, type RetryEvent } from '../../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, uniqueName, useLocalGcs } from '../helpers.js';

// Issue 22, item 6: configuration mistakes were retried like network blips. An endpoint `notaurl` failed after
// 71 s of DNS retries, a refused port after 39 s, a scheme-less STORAGE_EMULATOR_HOST was taken as https and
// retried for minutes, and no message named the host.

const ctx = useLocalGcs();

/** A port on 127.0.0.1 that nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('a refused connection to a local endpoint', () => {
  it('fails at the first attempt with a NetworkError naming host:port, not retried', async () => {
    const port = await closedPort();
    const stream = createGcsWriteStream({
      bucket: BUCKET,
      name: 'refused',
      apiEndpoint: `http://127.0.0.1:${port}`,
      // Room for retries, had the refusal been taken for a blip.
      retry: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 5 },
    });
    const retries: RetryEvent[] = [];
    stream.on('retry', (event) => retries.push(event));
    const error = await pipeline([contentAt(0, 1000)], stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).retryable).toBe(false);
    expect((error as NetworkError).host).toBe(`127.0.0.1:${port}`);
    expect((error as Error).message).toContain(`nothing accepts connections at 127.0.0.1:${port} (ECONNREFUSED)`);
    expect((error as Error).message).not.toContain('/upload/');
    expect(retries).toEqual([]);
  });
});

describe('a malformed endpoint', () => {
  for (const endpoint of ['notaurl', 'storage googleapis com', 'http://']) {
    it(`apiEndpoint ${JSON.stringify(endpoint)} is refused at construction`, () => {
      const before = ctx.server.requests.length;
      expect(() => createGcsWriteStream({ bucket: BUCKET, name: 'x', apiEndpoint: endpoint })).toThrow(InvalidArgumentError);
      expect(ctx.server.requests.length).toBe(before);
    });
  }

  it('the message says what a valid one looks like', () => {
    expect(() => createGcsWriteStream({ bucket: BUCKET, name: 'x', apiEndpoint: 'notaurl' })).toThrow(
      'apiEndpoint "notaurl" is not a URL: give a scheme and a host, e.g. https://storage.googleapis.com or http://127.0.0.1:4443',
    );
  });

  it('a host with a dot or a port, and a single-label host with a scheme, are accepted', () => {
    for (const endpoint of ['storage.example.com', 'gcs:4443', 'http://gcs', 'localhost:8080']) {
      const stream = createGcsWriteStream({
        bucket: BUCKET,
        name: 'x',
        apiEndpoint: endpoint,
        authClient: { request: () => new Promise(() => {}) },
      });
      stream.destroy();
    }
  });
});

describe('STORAGE_EMULATOR_HOST without a scheme', () => {
  it("is taken as http, as Google's clients take it: the upload reaches the local server", async () => {
    const name = uniqueName('emulator-host-without-scheme');
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = ctx.server.url.replace(/^http:\/\//, '');
    try {
      const size = K256 + 3;
      const stream = createGcsWriteStream({ bucket: BUCKET, name, retry: { maxAttempts: 1 } });
      await pipeline([contentAt(0, size)], stream);
      expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
  });
});
