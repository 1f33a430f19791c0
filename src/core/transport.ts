/**
 * The gaxios adapter that carries every request of this library over `node:http`/`node:https`. gaxios (and the
 * auth client in front of it) still prepares the request, adds credentials and interprets the status; only the
 * byte moving is ours, for three reasons:
 *  - request bodies are views into the chunk buffers and are written to the socket as they are (the default fetch
 *    path copies every body once more, which breaks the memory bound);
 *  - connections are kept alive in one agent per protocol;
 *  - an abort ends the request and nothing else: node-fetch, gaxios's default in Node, emits an `error` event on a
 *    response body nobody listens to when a request is aborted at the wrong moment, which crashes the process.
 * A proxy or mTLS agent that gaxios prepared (`HTTPS_PROXY`, `cert`/`key`) is used instead of ours.
 */
import http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { GatherBody } from './gather-body.js';
import { nodeRequire } from './node-require.js';

/** The parts of a gaxios-prepared request the adapter reads (gaxios 6 and 7 both provide them). */
export interface AdapterRequest {
  url: string | URL;
  method?: string;
  headers?: unknown;
  body?: unknown;
  data?: unknown;
  signal?: AbortSignal;
  agent?: unknown;
  /** Called once the body has been handed to the OS (see `HttpRequest.onBodySent`). */
  onBodySent?: unknown;
  /** Called when sending starts (see `HttpRequest.onSend`). */
  onSend?: unknown;
  /** `'arraybuffer'`: the body comes back as a Buffer (object media); anything else: as text. */
  responseType?: unknown;
}

/**
 * Response headers with the part of the Fetch `Headers` interface that gaxios, auth clients and this library use.
 * Not the global `Headers`: its first use loads Node's bundled fetch implementation (about 6.5 MiB of RSS and
 * 50 ms), which an upload that never calls fetch has no need of.
 */
export class ResponseHeaders {
  /** Node's parsed headers: lower-case names; only set-cookie is an array. */
  readonly #raw: http.IncomingHttpHeaders;

  constructor(raw: http.IncomingHttpHeaders = {}) {
    this.#raw = raw;
  }

  get(name: string): string | null {
    const value = this.#raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.#raw[name.toLowerCase()] !== undefined;
  }

  set(name: string, value: string): void {
    this.#raw[name.toLowerCase()] = String(value);
  }

  delete(name: string): void {
    delete this.#raw[name.toLowerCase()];
  }

  forEach(fn: (value: string, key: string, headers: this) => void): void {
    for (const [key, value] of this.entries()) fn(value, key, this);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const key of Object.keys(this.#raw)) {
      const value = this.get(key);
      if (value !== null) yield [key, value];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** The response shape gaxios expects back from an adapter. */
export interface AdapterResponse {
  status: number;
  statusText: string;
  headers: ResponseHeaders;
  data: string | Buffer;
  config: AdapterRequest;
  request: { responseURL: string };
  bodyUsed: true;
}

const AGENT_OPTIONS: http.AgentOptions = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: 64, scheduling: 'lifo' };

/**
 * How long a kept-alive socket may sit idle before this side closes it. A socket the server closes while idle fails
 * the next request that reuses it (EPIPE, ECONNRESET: a retry and a lost connection for nothing), so the client
 * must close first. Google's front ends keep an idle client connection for 610 s (the "client HTTP keepalive
 * timeout" of Google's load-balancing docs, cloud.google.com/load-balancing/docs/https/request-distribution; no
 * figure is published for storage.googleapis.com itself, which is served by the same front ends), and NAT
 * gateways on the way often drop idle flows after 4 to 6 minutes: 60 s is well below all of them, and reopening a
 * connection after a minute of silence costs one TLS handshake.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 60_000;
/** A server's `Keep-Alive: timeout=N` hint may only shorten the idle time, to half of it: never down to the edge. */
const HINT_SHARE = 0.5;
/** Below this, a socket is not kept at all: the server closes too soon to make reuse worth the race. */
const MIN_IDLE_MS = 250;

/** The idle timeout a server announced in its last answer on a socket (`Keep-Alive: timeout=N`), in ms. */
const keepAliveHints = new WeakMap<object, number>();

/**
 * `agent`, closing its idle sockets after {@link IDLE_SOCKET_TIMEOUT_MS}, or half the server's announced idle
 * timeout when that is shorter. (Node's agent destroys a free socket when its timeout fires; Node's own use of the
 * hint, a second below it, applies only with an agent-wide `timeout`, which would also time requests.)
 */
function closingIdleSockets<A extends http.Agent>(agent: A): A {
  // Called with the agent as `this` below.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = agent.keepSocketAlive;
  const keep = (socket: Duplex): boolean | void => original.call(agent, socket);
  // Node documents the return value (false: destroy the socket instead of keeping it); @types/node says void.
  (agent as unknown as { keepSocketAlive: (socket: Duplex) => boolean }).keepSocketAlive = (socket) => {
    if (keep(socket) === false) return false;
    const hintMs = keepAliveHints.get(socket);
    const idleMs = hintMs === undefined ? IDLE_SOCKET_TIMEOUT_MS : Math.min(IDLE_SOCKET_TIMEOUT_MS, hintMs * HINT_SHARE);
    if (idleMs < MIN_IDLE_MS) return false;
    (socket as Duplex & { setTimeout(ms: number): unknown }).setTimeout(idleMs);
    return true;
  };
  return agent;
}

/** The `timeout=N` of a `Keep-Alive` response header, in ms. */
function keepAliveHintMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  const match = value === undefined ? null : /(?:^|[\s,])timeout=(\d+)/i.exec(value);
  return match === null ? undefined : Number(match[1]) * 1000;
}

const httpStack = { module: http, agent: closingIdleSockets(new http.Agent(AGENT_OPTIONS)) };
/** `node:https` (and TLS, and OpenSSL's state) is loaded by the first https request: emulator uploads never need it. */
let httpsStack: { module: typeof https; agent: https.Agent } | undefined;

function stackFor(protocol: string): { module: typeof http | typeof https; agent: http.Agent } {
  if (protocol !== 'https:') return httpStack;
  if (httpsStack === undefined) {
    const module = nodeRequire('node:https') as typeof https;
    httpsStack = { module, agent: closingIdleSockets(new module.Agent(AGENT_OPTIONS)) };
  }
  return httpsStack;
}

/** Cap on response bodies read into memory (object resources and error bodies are small; media is read in ranges below it). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

function toHeaderRecord(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined || headers === null) return out;
  if (typeof (headers as Headers).forEach === 'function' && typeof (headers as Headers).get === 'function') {
    (headers as Headers).forEach((value, key) => {
      out[key] = value;
    });
    return out;
  }
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (typeof value === 'string' || typeof value === 'number') out[key.toLowerCase()] = String(value);
  }
  return out;
}

function bodyOf(request: AdapterRequest): Uint8Array | GatherBody | undefined {
  // The library's own bytes first. gaxios 7 copies `data` to `body` as it is, but gaxios 6 JSON-encodes a
  // Uint8Array that is not a Buffer into `body`: the empty body of a status query would go out as `{}`, which GCS
  // refuses (a status query carries no body).
  const data = request.data;
  const body = data instanceof Uint8Array || data instanceof GatherBody ? data : (request.body ?? data);
  if (body === undefined || body === null) return undefined;
  if (body instanceof Uint8Array || body instanceof GatherBody) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  throw new TypeError('unsupported request body type');
}

/** Where a request goes, in `http.request` option form. */
interface Target {
  href: string;
  protocol: string;
  hostname: string;
  port: string;
  path: string;
}

/** The last URL parsed: an upload sends every request to the same session URI, so it is parsed once. */
let lastTarget: Target | undefined;

function targetOf(url: string | URL): Target {
  const href = typeof url === 'string' ? url : url.href;
  if (lastTarget?.href === href) return lastTarget;
  const parsed = typeof url === 'string' ? new URL(url) : url;
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  lastTarget = { href, protocol: parsed.protocol, hostname, port: parsed.port, path: `${parsed.pathname}${parsed.search}` };
  return lastTarget;
}

/** Performs one request; resolves with status, headers and the body as text. */
export function httpAdapter(request: AdapterRequest): Promise<AdapterResponse> {
  return new Promise((resolve, reject) => {
    const target = targetOf(request.url);
    const stack = stackFor(target.protocol);
    const body = bodyOf(request);
    const headers = toHeaderRecord(request.headers);
    headers['content-length'] = String(body?.length ?? 0);
    const signal = request.signal;
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    if (typeof request.onSend === 'function') (request.onSend as () => void)();
    const agent = (request.agent as http.Agent | undefined) ?? stack.agent;
    const { protocol, hostname, port, path } = target;
    const req = stack.module.request({ protocol, hostname, port, path, method: request.method ?? 'GET', headers, agent });
    let settled = false;
    const finish = (error: Error | undefined, response?: AdapterResponse): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve(response!);
    };
    const onAbort = (): void => {
      req.destroy();
      finish(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error) => finish(error));
    if (typeof request.onBodySent === 'function') req.once('finish', request.onBodySent as () => void);
    req.on('response', (res) => {
      // Before the socket is freed (after this response ends): the agent reads it to time the socket's idleness.
      const hintMs = keepAliveHintMs(res.headers['keep-alive']);
      if (hintMs === undefined) keepAliveHints.delete(res.socket);
      else keepAliveHints.set(res.socket, hintMs);
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (part: Buffer) => {
        size += part.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`response body larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        parts.push(part);
      });
      res.on('error', (error) => finish(error));
      res.on('close', () => {
        if (!res.complete) finish(Object.assign(new Error('connection closed before the response ended'), { code: 'ECONNRESET' }));
      });
      res.on('end', () => {
        finish(undefined, {
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: new ResponseHeaders(res.headers),
          data: request.responseType === 'arraybuffer' ? Buffer.concat(parts) : Buffer.concat(parts).toString('utf8'),
          config: request,
          request: { responseURL: target.href },
          bodyUsed: true,
        });
      });
    });
    if (body instanceof GatherBody) {
      // One writev for all the pieces.
      req.cork();
      for (const piece of body.pieces) req.write(piece);
      req.uncork();
      req.end();
    } else {
      req.end(body);
    }
  });
}
