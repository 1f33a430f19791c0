import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GcsUploadError, NetworkError, ProtocolError, RequestTimeoutError, RetryExhaustedError } from '../src/index.js';
import type { FaultRule } from '../src/testing/index.js';
import { BUCKET, expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from './helpers.js';

// Hostile servers beyond those of errors.test.ts: responses that trickle in, requests never answered (open, status
// query, cancel), offsets that go back by more than a byte, and endpoints that are not HTTP servers at all. Each
// must end in a typed error within the configured timeouts, never in an object and never in a hang.

const ctx = useLocalGcs(); // trickles one byte per second: a response of ~100 bytes would take minutes
const SIZE = 3 * K256 + 10;
const RETRY = { stallTimeoutMs: 300, maxAttempts: 2 } as const;
/** The longest any of these may take: every attempt timing out, the cancel timing out, plus slack for a busy CI. */
const BOUND_MS = (RETRY.maxAttempts + 1) * RETRY.stallTimeoutMs + 3_000;

interface Failure {
  error: GcsUploadError;
  elapsedMs: number;
}

/** Uploads SIZE bytes with the rules (scoped to the object) and returns the error; asserts no object and no hang. */
async function hostile(rules: FaultRule[], endpoint?: string): Promise<Failure> {
  const name = uniqueName('hostile');
  for (const rule of rules) ctx.server.inject({ match: { ...rule.match, object: name }, action: rule.action });
  const started = Date.now();
  const { error, stream } = await upload(ctx.server, name, SIZE, 64 * KiB, {
    retry: RETRY,
    ...(endpoint === undefined ? {} : { apiEndpoint: endpoint }),
  });
  const elapsedMs = Date.now() - started;
  if (!stream.closed) await once(stream, 'close');
  expect(storedDigest(ctx.server, name)).toBeUndefined();
  expect(error).toBeInstanceOf(GcsUploadError);
  expect(elapsedMs).toBeLessThan(BOUND_MS);
  return { error: error as GcsUploadError, elapsedMs };
}

/** Expects a give-up after RETRY.maxAttempts attempts whose last failure is `cause`. */
function expectExhausted(error: GcsUploadError, cause: new (...args: never[]) => GcsUploadError): void {
  expect(error).toBeInstanceOf(RetryExhaustedError);
  expect(error.cause).toBeInstanceOf(cause);
  expect(error.message).toMatch(new RegExp(`after ${RETRY.maxAttempts} attempts`));
}

describe('responses that trickle in are abandoned after stallTimeoutMs', () => {
  it('every chunk and status query trickles: RetryExhaustedError(RequestTimeoutError)', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', times: Infinity }, action: { type: 'hostile', variant: 'trickle' } },
      { match: { kind: 'query', times: Infinity }, action: { type: 'hostile', variant: 'trickle' } },
    ]);
    expectExhausted(error, RequestTimeoutError);
    expect(error.bytesCommitted).toBe(0);
  });

  it('every open trickles: RetryExhaustedError(RequestTimeoutError), no session', async () => {
    const { error } = await hostile([{ match: { kind: 'open', times: Infinity }, action: { type: 'hostile', variant: 'trickle' } }]);
    expectExhausted(error, RequestTimeoutError);
    expect(error.message).toMatch(/no session was opened/);
  });

  it('one trickled response is abandoned, and the upload recovers from the status query', async () => {
    const name = uniqueName('trickle-once');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'hostile', variant: 'trickle' } });
    const started = Date.now();
    const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { retry: RETRY });
    expect(error).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(BOUND_MS);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });
});

describe('a server that accepts the request and never answers', () => {
  it('on open: RetryExhaustedError(RequestTimeoutError), no session', async () => {
    const { error } = await hostile([{ match: { kind: 'open', times: Infinity }, action: { type: 'stall' } }]);
    expectExhausted(error, RequestTimeoutError);
    expect(error.message).toMatch(/no session was opened/);
    expect(error.message).toMatch(/Opening the upload session got no response from 127\.0\.0\.1:\d+ within 300 ms/);
  });

  it('on the status query during recovery: RetryExhaustedError(RequestTimeoutError)', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', offset: K256 }, action: { type: 'status', status: 503 } },
      { match: { kind: 'query', times: Infinity }, action: { type: 'stall' } },
    ]);
    expectExhausted(error, RequestTimeoutError);
    expect(error.message).toMatch(/Querying the upload status got no response/);
    expect(error.bytesCommitted).toBe(K256);
  });

  it('on the cancel after a fatal error: the error still arrives within the stall timeout', async () => {
    const { error, elapsedMs } = await hostile([
      { match: { kind: 'chunk', offset: K256 }, action: { type: 'status', status: 400 } },
      { match: { kind: 'cancel', times: Infinity }, action: { type: 'stall' } },
    ]);
    expect(error.status).toBe(400);
    // The DELETE never got an answer: the message must not claim that the session was cancelled.
    expect(error.message).not.toMatch(/the session was cancelled/);
    expect(elapsedMs).toBeLessThan(RETRY.stallTimeoutMs + 2_000);
  });

  it('for ever, on every request: still a typed error in bounded time', async () => {
    const { error } = await hostile([{ match: { times: Infinity }, action: { type: 'stall' } }]);
    expectExhausted(error, RequestTimeoutError);
  });
});

describe('impossible committed offsets, in chunk answers and in status queries', () => {
  it('a Range three chunks back (no Range at all: "nothing committed") after confirming three chunks', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', offset: 3 * K256 }, action: { type: 'hostile', variant: 'range-backwards', bytes: 3 * K256 } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/went backwards: the server now reports 0 bytes after confirming 786432/);
  });

  it('a Range one chunk back, in the status query of a recovery', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', offset: 2 * K256 }, action: { type: 'status', status: 503 } },
      { match: { kind: 'query' }, action: { type: 'hostile', variant: 'range-backwards', bytes: K256 } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/went backwards: the server now reports 262144 bytes after confirming 524288/);
  });

  it('a malformed Range in the status query of a recovery', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', offset: K256 }, action: { type: 'reset' } },
      { match: { kind: 'query' }, action: { type: 'hostile', variant: 'bad-range' } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/malformed Range/);
  });

  it('a Range beyond the bytes sent, in answer to the final chunk', async () => {
    const { error } = await hostile([{ match: { kind: 'final' }, action: { type: 'hostile', variant: 'range-beyond' } }]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/only \d+ were sent/);
  });

  it('a "completed" answer (200, not an object resource) to a chunk that is not the last', async () => {
    const { error } = await hostile([{ match: { kind: 'chunk', offset: K256 }, action: { type: 'hostile', variant: 'bad-object' } }]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.bytesCommitted).toBe(K256);
  });

  it('every status query answers a malformed Range, after a reset on every chunk', async () => {
    const { error } = await hostile([
      { match: { kind: 'chunk', times: Infinity }, action: { type: 'reset' } },
      { match: { kind: 'query', times: Infinity }, action: { type: 'hostile', variant: 'bad-range' } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
  });
});

/** A TCP server that is not an HTTP server: `onSocket` decides what each connection gets. */
async function tcpServer(onSocket: (socket: Socket) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('endpoints that are not HTTP servers', () => {
  const cases: Array<[string, (socket: Socket) => void, new (...args: never[]) => GcsUploadError]> = [
    ['accepts the connection and never answers', () => undefined, RequestTimeoutError],
    ['accepts the connection and closes it at once', (socket) => socket.destroy(), NetworkError],
    ['accepts the connection and resets it', (socket) => socket.resetAndDestroy(), NetworkError],
    ['answers with bytes that are not HTTP', (socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'), NetworkError],
    [
      'answers with a truncated HTTP response',
      (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 500\r\nlocation: http://x\r\n\r\n{"na'),
      NetworkError,
    ],
  ];
  for (const [label, onSocket, cause] of cases) {
    it(`${label}: RetryExhaustedError(${cause.name}) on open, no session`, async () => {
      const endpoint = await tcpServer(onSocket);
      try {
        const { error } = await hostile([], endpoint.url);
        expectExhausted(error, cause);
        expect(error.message).toMatch(/no session was opened/);
        expect(error.message).toContain(`gs://${BUCKET}/`);
      } finally {
        await endpoint.close();
      }
    });
  }
});
