/**
 * Error classes. Every failure the stream reports is a {@link GcsUploadError} with a stable `code`; subclasses
 * build their own messages from structured fields (what happened, what was committed, what to do), so wording
 * stays consistent and no caller writes prose into them. The session URI is a bearer capability: it is never part
 * of a message and is kept non-enumerable so that loggers that dump own properties do not print it.
 *
 * Longer than most files here on purpose: every error class a user can catch is in this one file, next to the
 * kinds it words, so that the errors table of the README has one source.
 */
import { describeMismatches, describeOutcome, type Mismatch, type Outcome } from './outcome.js';
import { credentialsCause, describeCause, describeCredentialsFailure, oneLine, sanitizeCause } from './error-text.js';

/** What the uploader knew when the failure was reported; appended to the message once. */
export interface UploadContext {
  bucket: string;
  name: string;
  bytesAccepted: number;
  bytesCommitted: number;
  uploadUri: string | undefined;
  /** What became of the session; worded at the end of the message. */
  outcome: Outcome;
  /** The object the session created, when one is known to exist although the stream failed (e.g. aborted late). */
  object?: { readonly generation?: string | undefined } | undefined;
}

/**
 * Every `code` a {@link GcsUploadError} can carry: switch on it (the compiler then knows every case). One per
 * error class below, plus `ERR_GCS_UPLOAD_REDIRECTED`, which the append path handles itself (it never reaches users).
 */
export type GcsErrorCode =
  | 'ERR_GCS_UPLOAD_INVALID_ARGUMENT'
  | 'ERR_GCS_UPLOAD_NETWORK'
  | 'ERR_GCS_UPLOAD_REQUEST_TIMEOUT'
  | 'ERR_GCS_UPLOAD_HTTP_STATUS'
  | 'ERR_GCS_UPLOAD_UNAUTHENTICATED'
  | 'ERR_GCS_UPLOAD_PERMISSION_DENIED'
  | 'ERR_GCS_UPLOAD_BUCKET_NOT_FOUND'
  | 'ERR_GCS_UPLOAD_PRECONDITION_FAILED'
  | 'ERR_GCS_UPLOAD_SESSION_EXPIRED'
  | 'ERR_GCS_UPLOAD_PROTOCOL'
  | 'ERR_GCS_UPLOAD_CHECKSUM_MISMATCH'
  | 'ERR_GCS_UPLOAD_RETRIES_EXHAUSTED'
  | 'ERR_GCS_UPLOAD_ABORTED'
  | 'ERR_GCS_UPLOAD_NO_PROGRESS'
  | 'ERR_GCS_UPLOAD_SOURCE_MISMATCH'
  | 'ERR_GCS_UPLOAD_LISTENER'
  | 'ERR_GCS_UPLOAD_SIZE_MISMATCH'
  | 'ERR_GCS_UPLOAD_GRPC_STATUS'
  | 'ERR_GCS_UPLOAD_SUPERSEDED'
  | 'ERR_GCS_UPLOAD_OBJECT_FINALIZED'
  | 'ERR_GCS_UPLOAD_CREATE_UNCONFIRMED'
  | 'ERR_GCS_UPLOAD_REDIRECTED';

/** Base class of every error this library throws or emits. */
export class GcsUploadError extends Error {
  /** Stable, documented identifier (e.g. `ERR_GCS_UPLOAD_SESSION_EXPIRED`); see {@link GcsErrorCode}. */
  readonly code: GcsErrorCode;
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
  /**
   * The object resource, when the upload's object exists although the stream failed: `destroy()` came after GCS
   * had finalized it, or a listener threw after it completed. Undefined otherwise.
   */
  object: unknown;

  constructor(code: GcsErrorCode, message: string, options: { cause?: unknown; status?: number; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.bytesCommitted = undefined;
    this.bytesAccepted = undefined;
    this.resumable = false;
    this.object = undefined;
    Object.defineProperty(this, 'uploadUri', { value: undefined, enumerable: false, writable: true });
  }

  /** Records where the upload stood and says so in the message. Called once, by the uploader. */
  attachContext(ctx: UploadContext): this {
    if (this.bytesCommitted !== undefined) return this;
    this.bytesCommitted = ctx.bytesCommitted;
    this.bytesAccepted = ctx.bytesAccepted;
    Object.defineProperty(this, 'uploadUri', { value: ctx.uploadUri, enumerable: false, writable: false });
    // Only a session that could not be cancelled is still alive.
    this.resumable = ctx.uploadUri !== undefined && ctx.outcome.kind === 'uncancelled' && this.sessionUsable();
    this.object = ctx.object;
    const where = `gs://${ctx.bucket}/${ctx.name}`;
    // A resumed session can hold more than this stream's source supplied.
    const counts =
      ctx.bytesCommitted <= ctx.bytesAccepted
        ? `${ctx.bytesCommitted} of ${ctx.bytesAccepted} bytes committed`
        : `the session holds ${ctx.bytesCommitted} bytes, the source supplied ${ctx.bytesAccepted}`;
    this.message += ` [${where}: ${counts}; ${describeOutcome(ctx.outcome, where)}]`;
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

/**
 * Where a connection went: `host:port`, and whether a refusal there is final. Never a path or a query (a session
 * URI's query is a bearer capability).
 */
export interface ConnectionTarget {
  /** `host:port` (the port filled in when the URL left it to the scheme's default). */
  readonly host: string;
  /**
   * A refused connection (ECONNREFUSED) at this host is a configuration mistake, not a blip: nothing listens there,
   * and waiting does not start it. True for every endpoint that is not Google's (an emulator, the local server, a
   * loopback address); see `classifyFailure`.
   */
  readonly refusalIsFinal: boolean;
}

/** A request failed without an HTTP response: connection reset, refused, DNS failure, broken pipe. */
export class NetworkError extends GcsUploadError {
  /** `host:port` the failed connection went to, when known. */
  readonly host: string | undefined;

  constructor(what: string, cause: unknown, target?: ConnectionTarget) {
    // The raw error may be a GaxiosError whose `config` holds the session URI and the chunk body: keep only a
    // redacted copy of the underlying system error (which also lets the chunk buffer be reused).
    const code = describeCause(cause);
    const refused = code === 'ECONNREFUSED' && target?.refusalIsFinal === true;
    const message = refused
      ? `${what} failed: nothing accepts connections at ${target.host} (ECONNREFUSED). Check the endpoint ` +
        '(apiEndpoint, STORAGE_EMULATOR_HOST or --endpoint) and that the server there is running; not retried'
      : `${what} failed: ${code}${target === undefined ? '' : ` (connection to ${target.host})`}`;
    super('ERR_GCS_UPLOAD_NETWORK', message, { cause: sanitizeCause(cause), retryable: !refused });
    this.host = target?.host;
  }
}

/** A request got no complete response within `retry.stallTimeoutMs`. */
export class RequestTimeoutError extends GcsUploadError {
  /** `host:port` the request went to, when known. */
  readonly host: string | undefined;

  constructor(what: string, timeoutMs: number, host?: string) {
    super('ERR_GCS_UPLOAD_REQUEST_TIMEOUT', `${what} got no response${host === undefined ? '' : ` from ${host}`} within ${timeoutMs} ms`, {
      retryable: true,
    });
    this.host = host;
  }
}

/** GCS answered with an HTTP status that this library does not treat more specifically. */
export class HttpStatusError extends GcsUploadError {
  /** Seconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  /** `transient`: whether retry.ts deems the status worth retrying; `retryAfterMs` from a Retry-After header. */
  constructor(
    what: string,
    status: number,
    serverMessage: string | undefined,
    answer: { transient: boolean; retryAfterMs?: number | undefined },
  ) {
    const retryable = answer.transient;
    const retryAfterMs = answer.retryAfterMs;
    const hint = retryable ? 'a transient server condition' : 'the request was rejected';
    super('ERR_GCS_UPLOAD_HTTP_STATUS', `${what} failed with HTTP ${status} (${hint})${serverMessage ? `: ${serverMessage}` : ''}`, {
      status,
      retryable,
    });
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

/** 404 on opening the upload: the bucket does not exist (or the name has a typo). Never retried. */
export class BucketNotFoundError extends GcsUploadError {
  constructor(what: string) {
    super(
      'ERR_GCS_UPLOAD_BUCKET_NOT_FOUND',
      `${what} failed with HTTP 404: the bucket does not exist. Check the bucket name, or create the bucket`,
      {
        status: 404,
      },
    );
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** 412: a precondition (`ifGenerationMatch`, ...) did not hold; never retried. */
export class PreconditionFailedError extends GcsUploadError {
  constructor(what: string, serverMessage: string | undefined) {
    super('ERR_GCS_UPLOAD_PRECONDITION_FAILED', `${what} failed with HTTP 412: a precondition did not hold${suffix(serverMessage)}`, {
      status: 412,
    });
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

/** The ways a server can break the resumable protocol (see {@link ProtocolError}). */
export type ProtocolViolation =
  | { readonly kind: 'no-location' }
  | { readonly kind: 'bad-location' }
  | { readonly kind: 'foreign-origin'; readonly sessionOrigin: string; readonly endpointOrigin: string }
  | { readonly kind: 'malformed-range'; readonly header: string }
  | { readonly kind: 'range-overflow' }
  | { readonly kind: 'not-json' }
  | { readonly kind: 'not-object' }
  | { readonly kind: 'final-before-total' }
  | {
      readonly kind: 'premature-final';
      readonly objectSize: string;
      readonly bytesWritten: number;
      readonly deleted: boolean;
      readonly generation: string | undefined;
      readonly target: string;
    }
  | { readonly kind: 'offset-backwards'; readonly reported: number; readonly committed: number }
  | { readonly kind: 'offset-beyond-sent'; readonly reported: number; readonly sent: number }
  | { readonly kind: 'below-checkpoint'; readonly holds: number; readonly recorded: number };

function describeViolation(v: ProtocolViolation, status: number | undefined): string {
  switch (v.kind) {
    case 'no-location':
      return 'the session was opened but the response has no Location header';
    case 'bad-location':
      return 'the Location header of the session is not a valid URL';
    case 'foreign-origin':
      return `the session URI is on another origin (${v.sessionOrigin}) than the endpoint (${v.endpointOrigin}); refusing to send data or credentials there`;
    case 'malformed-range':
      return `the 308 response has a malformed Range header (${JSON.stringify(v.header.slice(0, 40))})`;
    case 'range-overflow':
      return 'the Range header is out of range';
    case 'not-json':
      return `the completed upload's response (HTTP ${status ?? '?'}) is not JSON`;
    case 'not-object':
      return `the completed upload's response (HTTP ${status ?? '?'}) is not an object resource`;
    case 'final-before-total':
      return 'the server finalized the object before the client sent its total size';
    case 'premature-final': {
      // Truncated only if the writer had supplied more than the object holds; otherwise it had not ended yet.
      const what = Number(v.objectSize) < v.bytesWritten ? 'truncated generation' : 'generation';
      return (
        `the server finalized the object at ${v.objectSize} bytes before the client sent its total size ` +
        `(${v.bytesWritten} bytes were written; GCS never does this, some emulators do on a status query); ` +
        (v.deleted ? `that ${what} was deleted` : `deleting that ${what} failed: delete ${v.target}#${v.generation ?? '?'} by hand`)
      );
    }
    case 'offset-backwards':
      return `the committed offset went backwards: the server now reports ${v.reported} bytes after confirming ${v.committed}`;
    case 'offset-beyond-sent':
      return `the server reports ${v.reported} bytes committed but only ${v.sent} were sent`;
    case 'below-checkpoint':
      return `the session holds ${v.holds} bytes but the checkpoint recorded ${v.recorded} as committed`;
  }
}

/** The server broke the resumable protocol (impossible offsets, missing headers, malformed bodies). */
export class ProtocolError extends GcsUploadError {
  /** What the server did. */
  readonly violation: ProtocolViolation;
  constructor(violation: ProtocolViolation, status?: number) {
    super(
      'ERR_GCS_UPLOAD_PROTOCOL',
      `Protocol violation by the server: ${describeViolation(violation, status)}`,
      status === undefined ? {} : { status },
    );
    this.violation = violation;
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** How the checksums failed (see {@link ChecksumMismatchError}). */
export type ChecksumFailure =
  /** GCS stored an object that differs from what was written; its generation was deleted, or could not be. */
  | {
      readonly kind: 'stored';
      readonly mismatches: readonly Mismatch[];
      readonly deleted: boolean;
      readonly generation: string | undefined;
    }
  /** GCS refused to finalize: what it received does not match the checksum sent with the final request. */
  | { readonly kind: 'refused'; readonly serverMessage: string };

/** The object GCS stored does not match what was written (or GCS refused the whole-object checksum). */
export class ChecksumMismatchError extends GcsUploadError {
  /** What differed, and what became of it. */
  readonly failure: ChecksumFailure;
  constructor(failure: ChecksumFailure) {
    super(
      'ERR_GCS_UPLOAD_CHECKSUM_MISMATCH',
      failure.kind === 'refused'
        ? 'GCS refused to finalize the object: the data it received does not match the checksum of what was written ' +
            `(${failure.serverMessage}). No object was created; retry the upload`
        : `The stored object does not match what was written (${describeMismatches(failure.mismatches)}); ` +
            (failure.deleted ? 'the corrupt generation was deleted' : 'deleting the corrupt generation failed: delete it by hand'),
      failure.kind === 'refused' ? { status: 400 } : {},
    );
    this.failure = failure;
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/** Transient failures went on for `retry.maxAttempts` attempts without the committed offset moving. */
export class RetryExhaustedError extends GcsUploadError {
  constructor(attempts: number, last: GcsUploadError) {
    super('ERR_GCS_UPLOAD_RETRIES_EXHAUSTED', `Gave up after ${attempts} attempts without progress; last failure: ${last.message}`, {
      cause: last,
      ...(last.status === undefined ? {} : { status: last.status }),
    });
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

/** How a resumed source differs from the session (see {@link SourceMismatchError}). */
export type SourceMismatch =
  /** The source's first `bytes` do not hash to the checkpoint's CRC32C. */
  | { readonly kind: 'prefix-differs'; readonly bytes: number }
  /** The source ended before the offset the session already holds. */
  | { readonly kind: 'ended-early'; readonly supplied: number; readonly holds: number }
  /** The session had completed, and its object differs from the source. */
  | { readonly kind: 'completed-differs'; readonly mismatches: readonly Mismatch[] }
  /** An appendable object holds bytes `from`-`to` past the checkpoint (persisted after it), and the source's differ. */
  | { readonly kind: 'object-differs'; readonly from: number; readonly to: number };

function describeSourceMismatch(m: SourceMismatch): string {
  switch (m.kind) {
    case 'prefix-differs':
      return `the source's first ${m.bytes} bytes differ from the bytes uploaded before the checkpoint`;
    case 'ended-early':
      return `the source ended after ${m.supplied} bytes, but the session already holds ${m.holds}`;
    case 'completed-differs':
      return `the session had already completed, and its object differs from this source (${describeMismatches(m.mismatches)}); the stored object was left as it is`;
    case 'object-differs':
      return `the object holds bytes ${m.from}-${m.to - 1} beyond the checkpoint (persisted after it was stored), and the source's bytes there differ; nothing was appended`;
  }
}

/** A resumed upload's source does not continue the session: it ended early, or its bytes differ. */
export class SourceMismatchError extends GcsUploadError {
  /** How the source differs. */
  readonly mismatch: SourceMismatch;
  constructor(mismatch: SourceMismatch) {
    super('ERR_GCS_UPLOAD_SOURCE_MISMATCH', `Cannot resume: ${describeSourceMismatch(mismatch)}; resume with the same source`);
    this.mismatch = mismatch;
  }
}

/**
 * A `session`, `progress`, `retry` or `checkpoint` listener threw. That is a bug in the caller's code, not a fault
 * to retry: the upload stops at once (its session is cancelled) and the listener's exception is the `cause`.
 */
export class ListenerError extends GcsUploadError {
  /** The event whose listener threw. */
  readonly event: string;
  constructor(event: string, cause: unknown) {
    super('ERR_GCS_UPLOAD_LISTENER', `A '${event}' listener threw (${describeListenerCause(cause)}); the upload was stopped`, { cause });
    this.event = event;
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

function describeListenerCause(cause: unknown): string {
  return oneLine(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause));
}

/** The source's length differs from the declared `size`: no object was created. */
export class SizeMismatchError extends GcsUploadError {
  /** The declared size. */
  readonly size: number;
  /** Bytes the source had written when the mismatch was found. */
  readonly written: number;
  constructor(size: number, written: number) {
    const what =
      written > size
        ? `The source wrote more than the declared size of ${size} bytes (${written} so far)`
        : `The source ended after ${written} of the declared ${size} bytes`;
    super(
      'ERR_GCS_UPLOAD_SIZE_MISMATCH',
      `${what}; nothing was finalized: check the source, or leave size unset for data of unknown length`,
    );
    this.size = size;
    this.written = written;
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

function suffix(serverMessage: string | undefined): string {
  return serverMessage ? ` (${serverMessage})` : '';
}

/** gRPC status codes that storage v2 documents as worth retrying (a write can be resumed after them). */
const TRANSIENT_GRPC_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'RESOURCE_EXHAUSTED']);

/** A `BidiWriteObject` stream ended with a gRPC status this library does not treat more specifically. */
export class GrpcStatusError extends GcsUploadError {
  /** The gRPC status name, e.g. `UNAVAILABLE`. */
  readonly grpcStatus: string;
  /** `what`: the step that failed; `grpcStatus`: the status name; `serverMessage`: the status details, if any. */
  constructor(what: string, grpcStatus: string, serverMessage: string | undefined) {
    const retryable = TRANSIENT_GRPC_CODES.has(grpcStatus);
    super(
      'ERR_GCS_UPLOAD_GRPC_STATUS',
      `${what} failed with gRPC status ${grpcStatus} (${retryable ? 'a transient condition' : 'the request was rejected'})${suffix(serverMessage)}`,
      { retryable },
    );
    this.grpcStatus = grpcStatus;
  }
}

/**
 * Another writer took the appendable object over (`append_object_spec` from another stream or process): this stream
 * stops at once and never writes again, so that no byte is written twice. Bytes it had not persisted are not in the
 * object; `bytesCommitted` says how many were.
 */
export class SupersededError extends GcsUploadError {
  constructor(target: string, serverMessage: string | undefined) {
    super(
      'ERR_GCS_UPLOAD_SUPERSEDED',
      `Another writer took over the appendable object ${target}${suffix(serverMessage)}; this stream stopped writing. ` +
        'Continue from the latest checkpoint in one process only',
    );
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/**
 * The appendable object was finalized (by this writer's earlier run, or another writer): nothing more can be appended
 * to it, and this stream wrote nothing. Its bytes are the object's; a checkpoint of it can no longer be resumed.
 */
export class ObjectFinalizedError extends GcsUploadError {
  constructor(target: string, serverMessage: string | undefined) {
    super(
      'ERR_GCS_UPLOAD_OBJECT_FINALIZED',
      `Appending to ${target} failed: the object is finalized${suffix(serverMessage)}, and nothing more can be appended to ` +
        'it. Read it to see what it holds; write the rest to a new object',
    );
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}

/**
 * Why a create's outcome stayed unknown (see {@link CreateUnconfirmedError}): the first answer was lost and the
 * retry, carrying the precondition, was refused by it.
 */
export type CreateUncertainty = { readonly reason: 'precondition-failed'; readonly ifGenerationMatch: string };

/**
 * An appendable create's stream broke before its first answer, so the generation it may have created is unknown:
 * such an object cannot be taken over (that needs the generation), and creating again could replace it without
 * anyone knowing. The stream stops instead: nothing written is confirmed persisted, and an unfinalized appendable
 * object may exist under the name.
 */
export class CreateUnconfirmedError extends GcsUploadError {
  /** The bucket of the object that may exist. */
  readonly bucket: string;
  /** The name of the object that may exist (`name` is the error class's, as on every error). */
  readonly objectName: string;
  /** Why the retried create failed. */
  readonly uncertainty: CreateUncertainty;
  /** `cause`: the failure that lost the first answer, or the retry's refusal. */
  constructor(bucket: string, name: string, uncertainty: CreateUncertainty, cause: GcsUploadError) {
    const target = `gs://${bucket}/${name}`;
    const why =
      `the first attempt's answer was lost, and its retry failed ifGenerationMatch ${uncertainty.ifGenerationMatch} ` +
      '(the first attempt, or another writer, created the object)';
    super(
      'ERR_GCS_UPLOAD_CREATE_UNCONFIRMED',
      `Creating appendable object ${target}: ${why}. An unfinalized appendable object may exist at ${target}; none of the ` +
        'bytes written is confirmed persisted. Check the object (delete it, or read its generation) before writing again',
      { cause },
    );
    this.bucket = bucket;
    this.objectName = name;
    this.uncertainty = uncertainty;
  }
  protected override sessionUsable(): boolean {
    return false;
  }
}
