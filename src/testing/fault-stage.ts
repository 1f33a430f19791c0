/**
 * The fault stage of the local GCS server: every upload request and object read passes through one, created from the
 * fault decided for it (or none). It carries that fault out at the point of the exchange it acts on, around the
 * route's own logic (object reads: see {@link FaultStage.runRead}):
 * before the body (`stall`), on the body (`reset`, `corrupt`), before the route (`status` before), on the route's
 * answer (`status` after, `drop-response`, hostile rewrites) and on the response as sent (`latency`, `trickle`).
 * Faults that change what the route itself does (`expire`, `partial`, answers that must not finalize, a forged
 * `Location`) are offered to the route as questions, so that the route never looks at the action.
 */
import type { EventEmitter } from 'node:events';
import type { Body, Exchange } from './exchange.js';
import type { FaultAction } from './faults.js';
import { errorOutcome, incomplete, type Outcome } from './outcome.js';
import { headerValue } from './request-fields.js';
import { CHUNK_ALIGNMENT } from './sessions.js';

/** What a route answers, for the stage to pass on through the response faults. */
export interface RouteReply {
  outcome: Outcome;
  /**
   * Send `outcome` as it is: `status` after, `drop-response` and the hostile rewrites leave it alone (latency and
   * trickle still apply). An open refused before it could create a session is answered so.
   */
  asIs?: boolean;
  /** Bytes the session had committed before this request: where `range-backwards` goes back from. Default 0. */
  committedBefore?: number;
  /** The object offset just past the bytes this request carried: what `range-beyond` claims beyond. Default 0. */
  sentEnd?: number;
}

type HostileAction = Extract<FaultAction, { type: 'hostile' }>;
type StallAction = Extract<FaultAction, { type: 'stall' }>;
type StatusAction = Extract<FaultAction, { type: 'status' }>;

/** Hostile answers claiming the upload is incomplete or not an object: the session must not finalize under them. */
const FINALIZE_HOLDING_VARIANTS: readonly string[] = ['bad-range', 'range-beyond', 'range-backwards', 'bad-object'];

function flipByte(body: Body, at: number): void {
  let position = 0;
  for (const piece of body.pieces) {
    if (at < position + piece.length) {
      const index = at - position;
      piece[index] = (piece[index] ?? 0) ^ 0xff;
      return;
    }
    position += piece.length;
  }
}

/** Carries out one exchange's fault (if any) around its route. */
export class FaultStage {
  readonly #exchange: Exchange;
  readonly #action: FaultAction | undefined;
  readonly #activity: EventEmitter;

  /** A stage for `exchange` carrying out `action`; `activity` is told when a request stalls for ever. */
  constructor(exchange: Exchange, action: FaultAction | undefined, activity: EventEmitter) {
    this.#exchange = exchange;
    this.#action = action;
    this.#activity = activity;
    // On the exchange rather than the stage: they act on any answer it sends, an internal error's included.
    if (action?.type === 'latency') exchange.delayMs += action.ms;
    if (action?.type === 'hostile' && action.variant === 'trickle') exchange.trickle = true;
  }

  /** Whether no fault fired, so that a route may take a path that bypasses the stage's phases. */
  get quiet(): boolean {
    return this.#action === undefined;
  }

  /** The status an `expire` fault kills the session with, if one fired. */
  get expiry(): number | undefined {
    return this.#action?.type === 'expire' ? (this.#action.status ?? 404) : undefined;
  }

  /** Whether the session must not finalize on this request (`partial`, or a hostile answer saying otherwise). */
  get holdsFinalize(): boolean {
    const action = this.#action;
    return action?.type === 'partial' || (action?.type === 'hostile' && FINALIZE_HOLDING_VARIANTS.includes(action.variant));
  }

  /** Whether a hostile fault keeps the session's real `Location` from the client (`no-location`, `foreign-location`). */
  get hidesLocation(): boolean {
    const action = this.#action;
    return action?.type === 'hostile' && (action.variant === 'no-location' || action.variant === 'foreign-location');
  }

  /** How many of a body's `length` bytes the route may persist: all, unless a `partial` fault keeps fewer. */
  persistable(length: number): number {
    return this.#action?.type === 'partial' ? Math.min(this.#action.bytes, length) : length;
  }

  /**
   * Runs the exchange through every phase: the faults before and on the body, then `route` with the body (unless a
   * fault ended the exchange or answers instead), then the faults on its answer. `declaredLength` is the body length
   * the headers announce, where a `reset` without `afterBytes` cuts it in half.
   */
  async run(declaredLength: number | undefined, route: (body: Body) => RouteReply): Promise<void> {
    const action = this.#action;
    // Awaited only for a stall: otherwise the body is read from the tick the request arrived in.
    if (action?.type === 'stall' && !(await this.#stall(action))) return;
    const body = await this.#body(declaredLength);
    if (body === undefined) return;
    if (action?.type === 'status' && action.when !== 'after') return this.#exchange.send(this.#faultOutcome(action));
    return this.respond(route(body));
  }

  /**
   * Runs an object read (a metadata or media `GET`) through its fault, then `serve` unless the fault answers instead:
   * a `stall` first; a `status` answered instead of the object; a `reset` before answering, or (with `afterBytes`)
   * once the head and that many body bytes of the route's answer went out. `latency` applies to what is sent.
   */
  async runRead(serve: () => Promise<void>): Promise<void> {
    const action = this.#action;
    const ex = this.#exchange;
    if (action?.type === 'stall' && !(await this.#stall(action))) return;
    if (action?.type === 'status') return ex.drainAndSend(this.#faultOutcome(action));
    if (action?.type === 'reset') {
      if (action.afterBytes === undefined) {
        await ex.waitLatency();
        ex.reset();
        return;
      }
      ex.cutAfter = action.afterBytes;
    }
    return serve();
  }

  /** Applies the faults that act on the answer (status after, drop, hostile), then sends it. */
  async respond(reply: RouteReply): Promise<void> {
    const ex = this.#exchange;
    const action = this.#action;
    if (reply.asIs === true) return ex.send(reply.outcome);
    let final = reply.outcome;
    if (action?.type === 'status' && action.when === 'after') final = this.#faultOutcome(action);
    if (action?.type === 'drop-response') {
      await ex.waitLatency();
      ex.record.status = 'dropped';
      ex.req.socket.destroy();
      return;
    }
    if (action?.type === 'hostile') final = hostileOutcome(action, final, reply.committedBefore ?? 0, reply.sentEnd ?? 0);
    return ex.send(final);
  }

  /** The fault before the body, a stall: `false` when it ends the exchange (for ever, or the client gave up). */
  async #stall(action: StallAction): Promise<boolean> {
    const { req, record } = this.#exchange;
    if (action.ms === undefined) {
      // Never read, never answer: the client's stall detection (or close()) ends it.
      record.status = 'stalled';
      this.#activity.emit('change');
      return false;
    }
    await this.#exchange.sleep(action.ms);
    if (req.destroyed || req.socket.destroyed) {
      record.status = 'stalled';
      return false;
    }
    return true;
  }

  /**
   * Reads the body, carrying out the faults that act on it (reset, corrupt). Returns `undefined` when the exchange
   * is over (connection reset, client gone): the record is already updated.
   */
  async #body(declaredLength: number | undefined): Promise<Body | undefined> {
    const ex = this.#exchange;
    const { req, record } = ex;
    const action = this.#action;
    const resetAfter = action?.type === 'reset' ? (action.afterBytes ?? Math.floor((declaredLength ?? 0) / 2)) : undefined;
    if (resetAfter === 0) {
      ex.reset();
      return undefined;
    }
    const body = await ex.readBody(resetAfter);
    if (body === undefined) {
      if (resetAfter !== undefined && req.socket.destroyed && record.status === 'pending') record.status = 'reset';
      else if (record.status === 'pending') record.status = action?.type === 'stall' ? 'stalled' : 'aborted';
      return undefined;
    }
    record.bytesReceived = body.length;
    if (resetAfter !== undefined) {
      // The body was shorter than the reset point: reset once it has all arrived.
      ex.reset();
      return undefined;
    }
    if (action?.type === 'corrupt') flipByte(body, action.at ?? 0);
    return body;
  }

  /** The answer of a `status` fault, its message placeholders filled in from the request. */
  #faultOutcome(action: StatusAction): Outcome {
    const { req } = this.#exchange;
    const headers: Record<string, string> = {};
    if (action.retryAfterSeconds !== undefined) headers['retry-after'] = String(action.retryAfterSeconds);
    if (action.status < 400) return { status: action.status, headers, body: '' };
    const message =
      action.message === undefined
        ? `Injected fault: HTTP ${action.status}.`
        : action.message.replaceAll('{url}', req.url ?? '').replaceAll('{authorization}', headerValue(req, 'authorization') ?? '');
    return errorOutcome(action.status, message, headers);
  }
}

/** What a broken server would have answered instead of `outcome`. */
function hostileOutcome(action: HostileAction, outcome: Outcome, committedBefore: number, sentEnd: number): Outcome {
  switch (action.variant) {
    case 'bad-range':
      return { status: 308, message: 'Resume Incomplete', headers: { range: 'bytes=abc' }, body: '' };
    case 'range-beyond':
      return { status: 308, message: 'Resume Incomplete', headers: { range: `bytes=0-${sentEnd + CHUNK_ALIGNMENT - 1}` }, body: '' };
    case 'range-backwards':
      return incomplete(Math.max(0, committedBefore - (action.bytes ?? 1)));
    case 'bad-object':
      return { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' }, body: '{"hello":1}' };
    case 'no-location':
    case 'foreign-location':
      return forgedLocation(action, outcome);
    case 'trickle':
      return outcome;
  }
}

/**
 * `outcome` with its `Location` (the session URI an open answers with) left out or moved to another origin.
 * Answers without one (every answer but an open's) are left alone.
 */
function forgedLocation(action: HostileAction, outcome: Outcome): Outcome {
  const { location, ...headers } = outcome.headers;
  if (location === undefined) return outcome;
  if (action.variant === 'no-location') return { ...outcome, headers };
  const origin = action.url === undefined ? 'http://127.0.0.2:1' : new URL(action.url).origin;
  // Keep the real Location's path and query, swap its origin.
  const pathStart = location.indexOf('/', location.indexOf('//') + 2);
  const target = pathStart < 0 ? '' : location.slice(pathStart);
  return { ...outcome, headers: { ...headers, location: `${origin}${target}` } };
}
