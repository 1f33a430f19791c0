/**
 * Fault rules for the local GCS server: their types and the pure logic that decides which rule fires for a request.
 * Nothing here performs I/O; `fault-stage.ts` carries the chosen action out.
 */

/**
 * The kinds of upload request a rule can match.
 * - `open`: the `POST` that starts a resumable session.
 * - `chunk`: any `PUT` to a session that carries bytes (the last chunk included).
 * - `final`: any `PUT` whose `Content-Range` carries the object's total size (`bytes A-B/TOTAL`, `bytes *\/TOTAL`).
 * - `query`: a status query (`PUT` with `Content-Range: bytes *\/*`).
 * - `cancel`: the `DELETE` of a session.
 */
export type UploadFaultKind = 'open' | 'chunk' | 'final' | 'query' | 'cancel';

/**
 * The kinds of object read a rule can match; a rule matches them only when it names the kind.
 * - `metadata`: a `GET` of an object resource (`/storage/v1/b/BUCKET/o/NAME`).
 * - `media`: a `GET` of an object's bytes (`alt=media`, or the `/download/...` path).
 */
export type ObjectReadFaultKind = 'metadata' | 'media';

/**
 * The object API calls of composite uploads a rule can match; a rule matches them only when it names the kind.
 * - `compose`: a `POST /storage/v1/b/BUCKET/o/NAME/compose` (`object`: the destination; `nth`: among the composes
 *   of that destination).
 * - `delete`: a `DELETE /storage/v1/b/BUCKET/o/NAME` (`nth`: among the deletes of that name).
 * - `list`: a `GET /storage/v1/b/BUCKET/o` (`nth`: among the listings of that bucket; `object` does not apply).
 */
export type ObjectApiFaultKind = 'compose' | 'delete' | 'list';

/** The kinds of request a rule can match. */
export type FaultKind = UploadFaultKind | ObjectReadFaultKind | ObjectApiFaultKind;

/** Every {@link FaultKind}, in a fixed order. */
export const FAULT_KINDS: readonly FaultKind[] = Object.freeze([
  'open',
  'chunk',
  'final',
  'query',
  'cancel',
  'metadata',
  'media',
  'compose',
  'delete',
  'list',
]);

const OBJECT_READ_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['metadata', 'media']);
const OBJECT_API_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['compose', 'delete', 'list']);

/** Actions that make sense on an object read: there is no body to cut, persist or corrupt, nor a session. */
const OBJECT_READ_ACTIONS: ReadonlySet<FaultAction['type']> = new Set<FaultAction['type']>(['reset', 'status', 'stall', 'latency']);

/**
 * Actions that make sense on a compose, delete or listing: no session to expire and nothing to persist in part, but
 * the call can be applied and its answer lost (`status` after, `drop-response`).
 */
const OBJECT_API_ACTIONS: ReadonlySet<FaultAction['type']> = new Set<FaultAction['type']>([
  'reset',
  'status',
  'stall',
  'latency',
  'drop-response',
]);

/**
 * Which requests a {@link FaultRule} applies to. Every condition given must hold; an empty match matches any upload
 * request (object reads only match rules that name their kind).
 */
export interface FaultMatch {
  /** The kind of request (see {@link FaultKind}); any upload kind when omitted. */
  kind?: FaultKind;
  /**
   * A byte offset of the object: matches a `PUT` whose body covers it (`A <= offset <= B`), or a body-less
   * `bytes *\/TOTAL` finalization when `offset === TOTAL`; matches a `media` read whose `Range` asks for it (a read
   * without `Range` asks for every byte, a suffix range `bytes=-N` for none known in advance). Ignored for `query`
   * rules; never matches `open`/`cancel`; not allowed for `metadata`, `compose`, `delete`, `list`.
   */
  offset?: number;
  /**
   * The 0-based index of the request among the requests of this kind on its session (`open`: among all opens;
   * `metadata`/`media`: among the reads of that kind of the object, whatever its generation; `compose`, `delete`:
   * among the requests of that kind naming the object; `list`: among the listings of the bucket).
   */
  nth?: number;
  /**
   * The 0-based index of the session, in the order the opens arrived (one that created no session takes no index,
   * unless another open arrived while it was in progress); any session when omitted. Not for reads.
   */
  session?: number;
  /**
   * The object name the session uploads (or the read reads); any object when omitted. For `open`, only a `name` given as a query
   * parameter (as every client sends it) is seen when the rule is checked.
   */
  object?: string;
  /** The bucket the session uploads to (or the read reads from); any bucket when omitted. */
  bucket?: string;
  /** How many times the rule fires; default 1. `Infinity` is allowed. */
  times?: number;
}

/** The ways a {@link FaultAction} of type `hostile` makes the server misbehave. */
export type HostileVariant =
  /** 308 with a malformed `Range` header (`bytes=abc`). */
  | 'bad-range'
  /** 308 whose `Range` claims more bytes than were ever sent. */
  | 'range-beyond'
  /**
   * 308 whose `Range` is lower than what the server had already confirmed: by the action's `bytes` (default 1); no
   * `Range` at all ("nothing committed") when that reaches 0.
   */
  | 'range-backwards'
  /** 200 with a body that is not an object resource (`{"hello":1}`). */
  | 'bad-object'
  /** The open request answers 200 without a `Location` header. */
  | 'no-location'
  /**
   * The open request answers with a `Location` on another origin: `http://127.0.0.2:1/...`, or the origin given as
   * the action's `url` (e.g. a second local server, to check that nothing is ever sent there).
   */
  | 'foreign-location'
  /** The response is sent one byte at a time, one byte per second (see `trickleIntervalMs`). */
  | 'trickle';

/**
 * What the server does to a request matched by a {@link FaultRule}. Object reads (`metadata`, `media`) take `reset`,
 * `status` (`before` only), `stall` and `latency`; `compose`, `delete` and `list` take `reset`, `status` (`after`:
 * the compose or delete is applied, then `status` answered; not for `list`), `stall`, `latency` and `drop-response`
 * (applied, then no answer).
 */
export type FaultAction =
  /**
   * Uploads: read `afterBytes` of the body (default: half of it), then reset the connection; nothing is persisted.
   * Object reads: without `afterBytes`, reset before answering; with it, send the status line, the headers and
   * `afterBytes` bytes of the response body, then reset the connection.
   */
  | { type: 'reset'; afterBytes?: number }
  /**
   * Answer `status`. `before` (default): without persisting anything. `after`: persist the bytes (and finalize a
   * final request) first, then answer `status` instead of the real response. An object read answers `status`
   * instead of the object.
   */
  | {
      type: 'status';
      status: number;
      when?: 'before' | 'after';
      retryAfterSeconds?: number;
      /**
       * The error message of the response body (default `Injected fault: HTTP <status>.`). `{url}` is replaced by the
       * request target as received (path and query, upload id included) and `{authorization}` by the request's
       * `Authorization` header: servers echo such things, and clients must not pass them on into their own errors.
       */
      message?: string;
    }
  /** Persist only the first `bytes` of the body (any amount, aligned or not) and answer 308; never finalizes. */
  | { type: 'partial'; bytes: number }
  /** Process the request fully (finalizing if it is final), then close the connection without a response. */
  | { type: 'drop-response' }
  /**
   * Stop reading the request: for `ms` milliseconds, then carry on normally; without `ms`, for ever (until the
   * client gives up or the server closes).
   */
  | { type: 'stall'; ms?: number }
  /** The session dies: this request and every later one to it get `status` (default 404). */
  | { type: 'expire'; status?: 404 | 410 }
  /** Flip one byte of the body (at body offset `at`, default 0) before it is persisted. */
  | { type: 'corrupt'; at?: number }
  /** Delay this response by `ms` milliseconds. */
  | { type: 'latency'; ms: number }
  /**
   * Misbehave as a broken server would; see {@link HostileVariant}. `url` (an `http(s)` origin) is where
   * `foreign-location` points; `bytes` is how far `range-backwards` goes back. Other variants ignore both.
   */
  | { type: 'hostile'; variant: HostileVariant; url?: string; bytes?: number };

/** A scripted fault: when a request satisfies `match`, the server carries out `action`. */
export interface FaultRule {
  /** Which requests the rule applies to. */
  match: FaultMatch;
  /** What happens to them. */
  action: FaultAction;
}

/** What the server knows about a request, from its headers, when it decides whether a fault fires. */
export interface FaultContext {
  /** Every kind the request counts as, e.g. `['chunk', 'final']` for a last chunk that carries bytes, `['media']`. */
  kinds: readonly FaultKind[];
  /** The 0-based session index, if the request belongs to (or, for `open`, would create) a session. */
  session?: number;
  /** The bucket of the session, if known. */
  bucket?: string;
  /** The object name of the session, if known. */
  object?: string;
  /** The request's 0-based index among its session's requests of each of its kinds. */
  nth: Partial<Record<FaultKind, number>>;
  /**
   * The object bytes the body covers (a `media` read: the bytes its `Range` asks for), inclusive; `end` is `Infinity`
   * for an open-ended `bytes A-*\/...` (`bytes=A-`, or no `Range`).
   */
  range?: { start: number; end: number };
  /** The total size the request announces, if any. */
  total?: number;
}

const HOSTILE_VARIANTS: ReadonlySet<string> = new Set<HostileVariant>([
  'bad-range',
  'range-beyond',
  'range-backwards',
  'bad-object',
  'no-location',
  'foreign-location',
  'trickle',
]);

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** Whether `value` is an `http:`/`https:` URL with nothing after its origin but an optional `/`. */
function isHttpOrigin(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && `${url.origin}/` === url.href;
  } catch {
    return false;
  }
}

/** Throws a RangeError naming `field` unless `value` is a non-negative integer (or absent, when `optional`). */
function requireCount(field: string, value: unknown, optional: boolean): void {
  if (optional && value === undefined) return;
  if (!isNonNegativeInteger(value)) {
    throw new RangeError(`fault rule: ${field} must be a non-negative integer, got ${String(value)}`);
  }
}

/**
 * Checks a rule's shape and values, so that a mistyped rule fails where it is written instead of silently never
 * firing. Throws a `TypeError` or `RangeError` naming the offending field.
 */
export function validateFaultRule(rule: FaultRule): void {
  const { match, action } = rule;
  if (typeof match !== 'object' || match === null) throw new TypeError('fault rule: match must be an object');
  if (match.kind !== undefined && !FAULT_KINDS.includes(match.kind)) {
    throw new RangeError(`fault rule: unknown kind ${String(match.kind)}`);
  }
  for (const field of ['offset', 'nth', 'session'] as const) requireCount(`match.${field}`, match[field], true);
  for (const field of ['object', 'bucket'] as const) {
    const value = match[field];
    if (value !== undefined && typeof value !== 'string') throw new TypeError(`fault rule: match.${field} must be a string`);
  }
  if (match.times !== undefined && !(match.times === Infinity || (isNonNegativeInteger(match.times) && match.times > 0))) {
    throw new RangeError(`fault rule: match.times must be a positive integer or Infinity, got ${String(match.times)}`);
  }
  if (typeof action !== 'object' || action === null) throw new TypeError('fault rule: action must be an object');
  validateAction(action);
  if (match.kind !== undefined && OBJECT_READ_KINDS.has(match.kind)) validateReadRule(match, action);
  if (match.kind !== undefined && OBJECT_API_KINDS.has(match.kind)) validateObjectApiRule(match, action);
}

/** The checks of a rule on compose, delete or list requests, which have no session nor object bytes to act on. */
function validateObjectApiRule(match: FaultMatch, action: FaultAction): void {
  const kind = String(match.kind);
  if (match.session !== undefined) throw new RangeError(`fault rule: match.session does not apply to ${kind} requests`);
  if (match.offset !== undefined) throw new RangeError(`fault rule: match.offset does not apply to ${kind} requests`);
  if (kind === 'list' && match.object !== undefined) throw new RangeError('fault rule: match.object does not apply to list requests');
  if (!OBJECT_API_ACTIONS.has(action.type)) {
    throw new RangeError(`fault rule: a ${String(action.type)} action does not apply to ${kind} requests`);
  }
  if (kind === 'list' && action.type === 'status' && action.when === 'after') {
    throw new RangeError("fault rule: status.when 'after' does not apply to list requests (a listing changes nothing)");
  }
}

/** Checks the fields of an action. */
function validateAction(action: FaultAction): void {
  switch (action.type) {
    case 'reset':
      requireCount('reset.afterBytes', action.afterBytes, true);
      return;
    case 'status':
      if (!Number.isInteger(action.status) || action.status < 200 || action.status > 999) {
        throw new RangeError(`fault rule: status must be an integer HTTP status, got ${String(action.status)}`);
      }
      if (action.when !== undefined && action.when !== 'before' && action.when !== 'after') {
        throw new RangeError(`fault rule: status.when must be 'before' or 'after', got ${String(action.when)}`);
      }
      requireCount('status.retryAfterSeconds', action.retryAfterSeconds, true);
      if (action.message !== undefined && typeof action.message !== 'string') {
        throw new TypeError('fault rule: status.message must be a string');
      }
      return;
    case 'partial':
      requireCount('partial.bytes', action.bytes, false);
      return;
    case 'drop-response':
      return;
    case 'stall':
      requireCount('stall.ms', action.ms, true);
      return;
    case 'expire':
      if (action.status !== undefined && action.status !== 404 && action.status !== 410) {
        throw new RangeError(`fault rule: expire.status must be 404 or 410, got ${String(action.status)}`);
      }
      return;
    case 'corrupt':
      requireCount('corrupt.at', action.at, true);
      return;
    case 'latency':
      requireCount('latency.ms', action.ms, false);
      return;
    case 'hostile':
      if (!HOSTILE_VARIANTS.has(action.variant)) {
        throw new RangeError(`fault rule: unknown hostile variant ${String(action.variant)}`);
      }
      if (action.url !== undefined && !isHttpOrigin(action.url)) {
        throw new RangeError(`fault rule: hostile.url must be an http(s) origin, got ${String(action.url)}`);
      }
      if (action.bytes !== undefined && !(isNonNegativeInteger(action.bytes) && action.bytes > 0)) {
        throw new RangeError(`fault rule: hostile.bytes must be a positive integer, got ${String(action.bytes)}`);
      }
      return;
    default: {
      const unknown: { type?: unknown } = action;
      throw new RangeError(`fault rule: unknown action type ${String(unknown.type)}`);
    }
  }
}

/** The checks of a rule on object reads, whose requests have no session and no body to act on. */
function validateReadRule(match: FaultMatch, action: FaultAction): void {
  if (match.session !== undefined) throw new RangeError(`fault rule: match.session does not apply to ${String(match.kind)} reads`);
  if (match.kind === 'metadata' && match.offset !== undefined) {
    throw new RangeError('fault rule: match.offset does not apply to metadata reads');
  }
  if (!OBJECT_READ_ACTIONS.has(action.type)) {
    throw new RangeError(`fault rule: a ${String(action.type)} action does not apply to ${String(match.kind)} reads`);
  }
  if (action.type === 'status' && action.when === 'after') {
    throw new RangeError(`fault rule: status.when 'after' does not apply to ${String(match.kind)} reads (nothing is persisted)`);
  }
}

/** Whether `match` (ignoring `times`) selects the request described by `context`. */
export function faultMatches(match: FaultMatch, context: FaultContext): boolean {
  const primary = match.kind ?? context.kinds[0];
  if (primary === undefined) return false;
  // Rules written for uploads (no kind) must not start firing on the reads that check an upload's result, nor on
  // the object API calls around it.
  if (match.kind === undefined && (OBJECT_READ_KINDS.has(primary) || OBJECT_API_KINDS.has(primary))) return false;
  if (match.kind !== undefined && !context.kinds.includes(match.kind)) return false;
  if (match.session !== undefined && context.session !== match.session) return false;
  if (match.object !== undefined && context.object !== match.object) return false;
  if (match.bucket !== undefined && context.bucket !== match.bucket) return false;
  if (match.nth !== undefined && context.nth[primary] !== match.nth) return false;
  if (match.offset !== undefined && primary !== 'query') {
    const { range, total } = context;
    if (range !== undefined) {
      if (match.offset < range.start || match.offset > range.end) return false;
    } else if (total === undefined || match.offset !== total) {
      return false;
    }
  }
  return true;
}

/** A short, stable description of an action, as recorded in `RequestRecord.fault` (e.g. `status 503 before`). */
export function describeFault(action: FaultAction): string {
  switch (action.type) {
    case 'reset':
      return action.afterBytes === undefined ? 'reset' : `reset after ${action.afterBytes}`;
    case 'status':
      return `status ${action.status} ${action.when ?? 'before'}`;
    case 'partial':
      return `partial ${action.bytes}`;
    case 'drop-response':
      return 'drop-response';
    case 'stall':
      return action.ms === undefined ? 'stall' : `stall ${action.ms}ms`;
    case 'expire':
      return `expire ${action.status ?? 404}`;
    case 'corrupt':
      return `corrupt at ${action.at ?? 0}`;
    case 'latency':
      return `latency ${action.ms}ms`;
    case 'hostile':
      return `hostile ${action.variant}`;
  }
}

interface ArmedRule {
  readonly rule: FaultRule;
  remaining: number;
}

/**
 * The scripted rules of a server, in insertion order. {@link FaultRules.take} finds the first rule that matches a
 * request and still has firings left, uses one firing up and returns its action.
 */
export class FaultRules {
  #rules: ArmedRule[] = [];

  /** Adds a rule after the existing ones. Throws if the rule is malformed (see {@link validateFaultRule}). */
  add(rule: FaultRule): void {
    validateFaultRule(rule);
    const copy: FaultRule = { match: { ...rule.match }, action: { ...rule.action } };
    this.#rules.push({ rule: copy, remaining: rule.match.times ?? 1 });
  }

  /** Removes every rule. */
  clear(): void {
    this.#rules = [];
  }

  /** How many rules still have firings left. */
  get pending(): number {
    return this.#rules.filter((armed) => armed.remaining > 0).length;
  }

  /** The action of the first matching rule with firings left (using one up), or `undefined` if none matches. */
  take(context: FaultContext): FaultAction | undefined {
    for (const armed of this.#rules) {
      if (armed.remaining <= 0 || !faultMatches(armed.rule.match, context)) continue;
      armed.remaining -= 1;
      return armed.rule.action;
    }
    return undefined;
  }
}
