/**
 * Error classes. Every failure the stream reports is a {@link GcsUploadError} with a stable `code`; subclasses
 * build their own messages so that wording stays consistent. The session URI is a bearer capability: it is never
 * part of a message and is kept non-enumerable so that loggers that dump own properties do not print it.
 */

/** What the uploader knew when the failure was reported; appended to the message once. */
export interface UploadContext {
  bucket: string;
  name: string;
  bytesAccepted: number;
  bytesCommitted: number;
  uploadUri: string | undefined;
  /** What became of the session, in words ending the message (e.g. "the session was cancelled..."). */
  outcome: string;
  /** Whether the session is still alive and could be resumed. */
  sessionAlive: boolean;
}

/** Base class of every error this library throws or emits. */
export class GcsUploadError extends Error {
  /** Stable, documented identifier (e.g. `ERR_GCS_UPLOAD_SESSION_EXPIRED`). */
  readonly code: string;
  /** HTTP status of the response that caused the failure, when there was one. */
  readonly status: number | undefined;
  /** Whether the failure is transient; the stream retries these by itself before giving up. */
  readonly retryable: boolean;
  /** Bytes GCS confirmed before the failure (known once the upload context is attached). */
  bytesCommitted: number | undefined;
  /** Bytes taken from the writer before the failure. */
  bytesAccepted: number | undefined;
  /**
   * Whether the server-side session could still be continued with `resume` (it was neither cancelled nor
   * expired). The stream itself always cancels the session when it fails, so this is false on emitted errors
   * unless cancellation did not go through.
   */
  resumable: boolean;
  /** The session URI (non-enumerable; a bearer capability, never in messages). */
  declare readonly uploadUri: string | undefined;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; status?: number; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.bytesCommitted = undefined;
    this.bytesAccepted = undefined;
    this.resumable = false;
    Object.defineProperty(this, 'uploadUri', { value: undefined, enumerable: false, writable: true });
  }

  /** Records where the upload stood and says so in the message. Called once, by the uploader. */
  attachContext(ctx: UploadContext): this {
    if (this.bytesCommitted !== undefined) return this;
    this.bytesCommitted = ctx.bytesCommitted;
    this.bytesAccepted = ctx.bytesAccepted;
    Object.defineProperty(this, 'uploadUri', { value: ctx.uploadUri, enumerable: false, writable: false });
    this.resumable = ctx.uploadUri !== undefined && ctx.sessionAlive && this.sessionUsable();
    const where = `gs://${ctx.bucket}/${ctx.name}`;
    this.message += ` [${where}: ${ctx.bytesCommitted} of ${ctx.bytesAccepted} bytes committed; ${ctx.outcome}]`;
    return this;
  }

  /** Whether the session is still alive after this kind of failure. */
  protected sessionUsable(): boolean {
    return true;
  }
}

/** An option or argument is invalid; thrown before any request is made. */
export class InvalidArgumentError extends GcsUploadError {
  constructor(message: string) {
    super('ERR_GCS_UPLOAD_INVALID_ARGUMENT', message);
  }
}

/** A request failed without an HTTP response: connection reset, refused, DNS failure, broken pipe. */
export class NetworkError extends GcsUploadError {
  constructor(what: string, cause: unknown) {
    // The raw error may be a GaxiosError whose `config` holds the session URI and the chunk body: keep only a
    // redacted copy of the underlying system error (which also lets the chunk buffer be reused).
    super('ERR_GCS_UPLOAD_NETWORK', `${what} failed: ${describeCause(cause)}`, { cause: sanitizeCause(cause), retryable: true });
  }
}

/** A request got no complete response within `retry.stallTimeoutMs`. */
export class RequestTimeoutError extends GcsUploadError {
  constructor(what: string, timeoutMs: number) {
    super('ERR_GCS_UPLOAD_REQUEST_TIMEOUT', `${what} got no response within ${timeoutMs} ms`, { retryable: true });
  }
}

/** GCS answered with an HTTP status that this library does not treat more specifically. */
export class HttpStatusError extends GcsUploadError {
  /** Seconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(what: string, status: number, serverMessage: string | undefined, retryAfterMs?: number) {
    const retryable = RETRYABLE_STATUSES.has(status);
    const hint = retryable ? 'a transient server condition' : 'the request was rejected';
    super(
      'ERR_GCS_UPLOAD_HTTP_STATUS',
      `${what} failed with HTTP ${status} (${hint})${serverMessage ? `: ${serverMessage}` : ''}`,
      { status, retryable },
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * What went wrong with the credentials: GCS refused the request (`rejected`, HTTP 401), or the auth client failed
 * before the request was sent (`unobtainable`: a key file that cannot be read, no credentials found, a token
 * endpoint that refused the grant), with what it threw as `cause`.
 */
export type AuthenticationFailure =
  | { readonly reason: 'rejected'; readonly serverMessage: string | undefined }
  | { readonly reason: 'unobtainable'; readonly cause: unknown };

/**
 * The credentials were rejected (401, after one token refresh by the auth client) or could not be obtained at all.
 * Never retried: neither gets better by waiting.
 */
export class AuthenticationError extends GcsUploadError {
  /** `rejected`: GCS answered 401; `unobtainable`: the auth client could not produce credentials, nothing was sent. */
  readonly reason: AuthenticationFailure['reason'];

  constructor(what: string, failure: AuthenticationFailure) {
    const advice = 'Check GOOGLE_APPLICATION_CREDENTIALS or the authClient option';
    if (failure.reason === 'rejected') {
      super(
        'ERR_GCS_UPLOAD_UNAUTHENTICATED',
        `${what} was rejected with HTTP 401: the credentials are missing or invalid${suffix(failure.serverMessage)}. ${advice}`,
        { status: 401 },
      );
    } else {
      super(
        'ERR_GCS_UPLOAD_UNAUTHENTICATED',
        `${what} failed before anything was sent: the credentials could not be obtained (${describeCredentialsFailure(failure.cause)}). ${advice}`,
        { cause: credentialsCause(failure.cause) },
      );
    }
    this.reason = failure.reason;
  }
}

/** 403: the credentials lack permission (storage.objects.create, or delete when overwriting). */
export class PermissionDeniedError extends GcsUploadError {
  constructor(what: string, serverMessage: string | undefined) {
    super(
      'ERR_GCS_UPLOAD_PERMISSION_DENIED',
      `${what} was rejected with HTTP 403: permission denied${suffix(serverMessage)}. ` +
        'Grant the caller storage.objects.create (and storage.objects.delete to overwrite) on the bucket',
      { status: 403 },
    );
  }
}

/** 412: a precondition (`ifGenerationMatch`, ...) did not hold; never retried. */
export class PreconditionFailedError extends GcsUploadError {
  constructor(what: string, serverMessage: string | undefined) {
    super(
      'ERR_GCS_UPLOAD_PRECONDITION_FAILED',
      `${what} failed with HTTP 412: a precondition did not hold${suffix(serverMessage)}`,
      { status: 412 },
    );
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** 404/410 on the session URI: the session expired (sessions live up to a week) or was cancelled. */
export class SessionExpiredError extends GcsUploadError {
  constructor(status: number) {
    super(
      'ERR_GCS_UPLOAD_SESSION_EXPIRED',
      status === 404
        ? 'The upload session no longer exists (HTTP 404: expired or unknown); start a new upload'
        : 'The upload session was terminated (HTTP 410: cancelled or failed); start a new upload',
      { status },
    );
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** The server broke the resumable protocol (impossible offsets, missing headers, malformed bodies). */
export class ProtocolError extends GcsUploadError {
  constructor(message: string, status?: number) {
    super('ERR_GCS_UPLOAD_PROTOCOL', `Protocol violation by the server: ${message}`, status === undefined ? {} : { status });
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** The object GCS stored does not match what was written (or GCS refused the whole-object checksum). */
export class ChecksumMismatchError extends GcsUploadError {
  constructor(message: string, status?: number) {
    super('ERR_GCS_UPLOAD_CHECKSUM_MISMATCH', message, status === undefined ? {} : { status });
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** Transient failures went on for `retry.maxAttempts` attempts without the committed offset moving. */
export class RetryExhaustedError extends GcsUploadError {
  constructor(attempts: number, last: GcsUploadError) {
    super(
      'ERR_GCS_UPLOAD_RETRIES_EXHAUSTED',
      `Gave up after ${attempts} attempts without progress; last failure: ${last.message}`,
      { cause: last, ...(last.status === undefined ? {} : { status: last.status }) },
    );
  }
}

/** The stream was destroyed or its `signal` aborted before the upload finished. */
export class UploadAbortedError extends GcsUploadError {
  constructor(cause?: unknown) {
    super('ERR_GCS_UPLOAD_ABORTED', 'The upload was aborted before it finished', cause === undefined ? {} : { cause });
  }
}

/** A response committed none of the bytes it was sent (counts as a failed attempt, then the rest is resent). */
export class NoProgressError extends GcsUploadError {
  constructor(what: string) {
    super('ERR_GCS_UPLOAD_NO_PROGRESS', `${what}: the server answered but committed none of the bytes`, { retryable: true });
  }
}

/** A resumed upload's source does not fit the session (too short, or different bytes than before). */
export class SourceMismatchError extends GcsUploadError {
  constructor(message: string) {
    super('ERR_GCS_UPLOAD_SOURCE_MISMATCH', `Cannot resume: ${message}; resume with the same source`);
  }
}

/** The source's length differs from the declared `size`: no object was created. */
export class SizeMismatchError extends GcsUploadError {
  constructor(message: string) {
    super('ERR_GCS_UPLOAD_SIZE_MISMATCH', `${message}; nothing was finalized: check the source, or leave size unset for data of unknown length`);
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** HTTP statuses GCS documents as transient. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

function suffix(serverMessage: string | undefined): string {
  return serverMessage ? ` (${serverMessage})` : '';
}

const UPLOAD_ID = /upload_id=[^&\s"']+/g;
const BEARER = /Bearer\s+[A-Za-z0-9._~+/=-]+/g;

/** Removes upload ids and bearer tokens from any text that may reach a message or a log. */
export function redact(text: string): string {
  return text.replace(UPLOAD_ID, 'upload_id=<redacted>').replace(BEARER, 'Bearer <redacted>');
}

/** The errors of a cause chain, outermost first (cycles cut). */
function causeChain(cause: unknown): Error[] {
  const chain: Error[] = [];
  let current: unknown = cause;
  while (current instanceof Error && !chain.includes(current)) {
    chain.push(current);
    current = current.cause;
  }
  return chain;
}

/**
 * A copy of the innermost error of a cause chain (the system error a user can act on), with its code and a
 * redacted message, and nothing else: no request config, no URLs with upload ids, no bodies.
 */
export function sanitizeCause(cause: unknown): Error {
  const source = causeChain(cause).at(-1) ?? new Error(String(cause));
  const copy = new Error(redact(source.message).slice(0, 300));
  copy.name = source.name;
  const code = (source as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code });
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

/** A short, redacted description of a low-level failure (a system error code, or a message). */
export function describeCause(cause: unknown): string {
  // Network failures arrive wrapped (GaxiosError -> TypeError('fetch failed') -> SystemError); the innermost code
  // is what a user can act on.
  let best: string | undefined;
  for (const error of causeChain(cause)) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) best = code;
  }
  if (best) return best;
  if (cause instanceof Error) return redact(cause.message).slice(0, 200);
  return redact(String(cause)).slice(0, 200);
}

/**
 * Error codes of failures on the network itself (connect, DNS, reset, timeout), as Node.js, undici and gaxios
 * report them. An auth client that fails with one of these could not reach its token endpoint: worth retrying.
 */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/** Whether anything in the cause chain is a network-level failure (see NETWORK_CODES) or a timeout. */
export function isNetworkFailure(cause: unknown): boolean {
  return causeChain(cause).some((error) => {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_'))) return true;
    return error.name === 'TimeoutError' || error.name === 'AbortError';
  });
}

/**
 * Why an auth client could not produce credentials, in words that quote nothing of the credentials: a system error
 * code (`ENOENT`), the token endpoint's status and OAuth error code, or the error's class.
 */
function describeCredentialsFailure(cause: unknown): string {
  const response = (cause as { response?: { status?: unknown; data?: unknown } } | null)?.response;
  if (typeof response?.status === 'number') {
    const data = typeof response.data === 'string' ? safeJson(response.data) : response.data;
    const oauthError = (data as { error?: unknown } | null)?.error;
    const code = typeof oauthError === 'string' && /^[a-z_]{1,64}$/.test(oauthError) ? `: ${oauthError}` : '';
    return `the token endpoint answered HTTP ${response.status}${code}`;
  }
  const chain = causeChain(cause);
  const code = chain.map((error) => (error as { code?: unknown }).code).find((c) => typeof c === 'string' && /^E[A-Z]+$/.test(c));
  if (typeof code === 'string') return code;
  const innermost = chain.at(-1);
  // google-auth-library's message when Application Default Credentials found nothing.
  if (chain.some((error) => error.message.startsWith('Could not load the default credentials'))) return 'no credentials were found';
  return innermost?.name ?? typeof cause;
}

/**
 * The `cause` kept on an unobtainable-credentials error: a system error as sanitizeCause keeps it (its message names
 * the file), anything else by class and code only, since a parser's message may quote the key file.
 */
function credentialsCause(cause: unknown): Error {
  const copy = sanitizeCause(cause);
  const code = (copy as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return copy;
  copy.message = `${copy.name} (its message is withheld: it may quote the credentials)`;
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
