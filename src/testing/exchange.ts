/**
 * One request to the local GCS server and its answer, with the entry the request log keeps of it. Routes and the
 * fault stage read bodies and send answers only through it, so that every answer gets the same latency, trickle
 * and record keeping.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UploadFaultKind } from './faults.js';
import type { Outcome } from './outcome.js';
import { headerValue } from './request-fields.js';
import type { Timers } from './timers.js';
import type { ConnectionThrottle } from './connection-throttle.js';

/** What a request was, for the request log. `object` is the object API (metadata, media, list, delete). */
export type RequestKind = UploadFaultKind | 'object' | 'other';

/**
 * How a request ended: an HTTP status, or
 * `pending` (still being handled), `reset` (connection reset by a fault), `dropped` (processed, no response),
 * `stalled` (never answered, or the client gave up during a stall), `aborted` (the client went away mid-request).
 */
export type RequestStatus = number | 'pending' | 'reset' | 'dropped' | 'stalled' | 'aborted';

/** One entry of {@link LocalGcs.requests}, in order of arrival. */
export interface RequestRecord {
  method: string;
  /** The URL path and query string, with the `upload_id` parameter (a bearer capability) removed. */
  path: string;
  kind: RequestKind;
  /** The 0-based index of the session the request belongs to, if any. */
  session?: number;
  /** The bucket of the upload or object, if known. */
  bucket?: string;
  /** The object name of the upload or object, if known. */
  object?: string;
  /** The `X-Trace` request header, if sent: lets a test tag its requests and find them in the log. */
  trace?: string;
  /** The `Content-Range` header of a `PUT`. */
  contentRange?: string;
  /** Body bytes received. */
  bytesReceived: number;
  status: RequestStatus;
  /** The injected fault, described (e.g. `status 503 before`), if one fired. */
  fault?: string;
}

/** A request body as received: its pieces in order and their total length. */
export interface Body {
  pieces: Buffer[];
  length: number;
}

/** What an exchange needs of its server. */
export interface ExchangeHost {
  /** The delay before every response, in milliseconds, as set now (`setLatency` changes it between requests). */
  latencyMs(): number;
  /** The interval between bytes of a trickled response, in milliseconds. */
  readonly trickleIntervalMs: number;
  /** The server's timers, cancelled when it closes. */
  readonly timers: Timers;
  /** The per-connection bandwidth limit, if any: told of every body piece read. */
  readonly throttle?: ConnectionThrottle | undefined;
}

/** Resolves once `res` drained or closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The target without its `upload_id` query parameter. */
function redactedPath(target: string): string {
  const at = target.indexOf('?');
  if (at < 0) return target;
  const kept = target
    .slice(at + 1)
    .split('&')
    .filter((pair) => !pair.startsWith('upload_id='));
  return kept.length === 0 ? target.slice(0, at) : `${target.slice(0, at)}?${kept.join('&')}`;
}

/** A request, its response and its {@link RequestRecord}. */
export class Exchange {
  /** The request. */
  readonly req: IncomingMessage;
  /** Its response. */
  readonly res: ServerResponse;
  /** Its entry in the request log, updated as the exchange goes on. */
  readonly record: RequestRecord;
  /** Extra delay before the response (a `latency` fault), in milliseconds. */
  delayMs = 0;
  /** Send the response one byte at a time (a `hostile trickle` fault). */
  trickle = false;
  /**
   * Reset the connection once this many bytes of the response body went out, instead of ending it (a `reset` fault
   * with `afterBytes` on an object read). Undefined: send the whole body.
   */
  cutAfter: number | undefined;
  readonly #host: ExchangeHost;

  /** Starts the exchange of `req`, with a fresh record (`pending`, kind `other`). */
  constructor(req: IncomingMessage, res: ServerResponse, host: ExchangeHost) {
    this.req = req;
    this.res = res;
    this.#host = host;
    this.record = { method: req.method ?? 'GET', path: redactedPath(req.url ?? '/'), kind: 'other', bytesReceived: 0, status: 'pending' };
    const trace = headerValue(req, 'x-trace');
    if (trace !== undefined) this.record.trace = trace;
  }

  /** Waits `ms` milliseconds on the server's timers (see {@link Timers.sleep}). */
  sleep(ms: number): Promise<void> {
    return this.#host.timers.sleep(ms);
  }

  /** Waits out the server's latency plus this exchange's own delay. */
  waitLatency(): Promise<void> {
    return this.sleep(this.#host.latencyMs() + this.delayMs);
  }

  /** Accounts for `piece`, just read from the body, in the connection's bandwidth limit (which may pause the request). */
  metered(piece: Buffer): void {
    this.#host.throttle?.meter(this.req, piece.length);
  }

  /** Collects the body; resets the connection once `resetAfter` bytes arrived. `undefined` if it never completes. */
  readBody(resetAfter: number | undefined): Promise<Body | undefined> {
    const { req } = this;
    return new Promise((resolve) => {
      const pieces: Buffer[] = [];
      let length = 0;
      let settled = false;
      const settle = (value: Body | undefined): void => {
        if (settled) return;
        settled = true;
        resolve(value);
      };
      req.on('data', (piece: Buffer) => {
        if (settled) return;
        if (resetAfter !== undefined && length + piece.length >= resetAfter) {
          req.socket.resetAndDestroy();
          settle(undefined);
          return;
        }
        pieces.push(piece);
        length += piece.length;
        this.metered(piece);
      });
      req.once('end', () => settle({ pieces, length }));
      req.once('close', () => settle(req.complete ? { pieces, length } : undefined));
      req.once('error', () => settle(undefined));
    });
  }

  /** Resets the connection (TCP RST) and records it. */
  reset(): void {
    this.record.status = 'reset';
    this.req.socket.resetAndDestroy();
  }

  /** Reads and drops the body, then sends `outcome`: for answers that do not depend on the body. */
  async drainAndSend(outcome: Outcome): Promise<void> {
    const body = await this.readBody(undefined);
    if (body === undefined) {
      this.record.status = 'aborted';
      return;
    }
    this.record.bytesReceived = body.length;
    return this.send(outcome);
  }

  /** Sends `outcome` after the latency, trickling it if asked; records its status. */
  async send(outcome: Outcome): Promise<void> {
    await this.waitLatency();
    const { res, record } = this;
    if (res.destroyed || this.req.socket.destroyed) {
      if (record.status === 'pending') record.status = 'aborted';
      return;
    }
    record.status = outcome.status;
    const body = Buffer.from(outcome.body, 'utf8');
    if (this.trickle) return this.#trickle(outcome, body);
    res.writeHead(outcome.status, outcome.message, { ...outcome.headers, 'content-length': String(body.length) });
    if (this.cutAfter !== undefined) return this.writeBody([body]);
    res.end(body);
  }

  /**
   * Writes `parts` as the response body (its head already written), waiting for the client whenever the socket is
   * full, and ends it; with `cutAfter`, resets the connection once that many bytes were handed to the socket.
   */
  async writeBody(parts: Iterable<Buffer>): Promise<void> {
    const { res } = this;
    let left = this.cutAfter ?? Infinity;
    for (const part of parts) {
      if (left <= 0) break;
      const piece = part.length > left ? part.subarray(0, left) : part;
      left -= piece.length;
      if (!res.write(piece)) await drained(res);
      if (res.destroyed) return;
    }
    if (this.cutAfter === undefined) {
      res.end();
      return;
    }
    // The client gets the head and the bytes written (the socket's callbacks come in order), then the reset.
    res.flushHeaders();
    await new Promise<void>((resolve) => this.req.socket.write(Buffer.alloc(0), () => resolve()));
    this.reset();
  }

  /** Writes the raw response one byte per `trickleIntervalMs`, bypassing Node's response object, then closes. */
  #trickle(outcome: Outcome, body: Buffer): void {
    const socket = this.req.socket;
    const statusText = outcome.message ?? (outcome.status === 200 ? 'OK' : 'Status');
    const lines = [`HTTP/1.1 ${outcome.status} ${statusText}`];
    for (const [key, value] of Object.entries(outcome.headers)) lines.push(`${key}: ${value}`);
    lines.push(`content-length: ${body.length}`, 'connection: close', '', '');
    const bytes = Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]);
    let position = 0;
    const tick = (): void => {
      if (socket.destroyed) return;
      socket.write(bytes.subarray(position, position + 1));
      position += 1;
      if (position >= bytes.length) {
        socket.end();
        return;
      }
      this.#host.timers.after(this.#host.trickleIntervalMs, tick);
    };
    tick();
  }
}
