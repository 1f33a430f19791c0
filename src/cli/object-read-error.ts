/**
 * `ObjectReadError`: `gcs-stream cat` could not read the object. The CLI exits with code 1 for it. Its message is
 * built here from what went wrong and where the read stood (the object, its generation, the bytes printed), so that
 * every failure is worded the same way.
 */

/** Stable codes of {@link ObjectReadError}. */
export type ObjectReadErrorCode =
  /** The object does not exist (or is not visible to these credentials). */
  | 'ERR_GCS_STREAM_NOT_FOUND'
  /** The object disappeared (deleted, or replaced by another generation) while it was being read. */
  | 'ERR_GCS_STREAM_GONE'
  /** Transient failures went on for the whole retry budget without a byte printed. */
  | 'ERR_GCS_STREAM_RETRIES_EXHAUSTED'
  /** GCS refused the read, or answered with a response that cannot be read. */
  | 'ERR_GCS_STREAM_READ';

/** What went wrong (see {@link ObjectReadError.failure}). */
export type ObjectReadFailure =
  | { readonly kind: 'not-found' }
  /** The generation read no longer exists; `live` is the generation that replaced it, null if none (deleted). */
  | { readonly kind: 'gone'; readonly live: string | null | undefined }
  /** A status that retrying cannot change (403, 400...), or credentials that could not be obtained (no status). */
  | { readonly kind: 'rejected'; readonly status: number | undefined; readonly detail: string | undefined }
  | { readonly kind: 'retries-exhausted'; readonly attempts: number; readonly last: string }
  | { readonly kind: 'unreadable-resource' }
  /** A media read from byte `start` was answered with other bytes (a server that ignored the Range). */
  | { readonly kind: 'wrong-range'; readonly start: number }
  /** The HTTP client returned media as text: it ignored `responseType: 'arraybuffer'`. */
  | { readonly kind: 'text-media' };

/** Where the read stood when it failed. */
export interface ReadPosition {
  /** `gs://BUCKET/OBJECT`. */
  readonly target: string;
  /** The generation being read, once known. */
  readonly generation: string | undefined;
  /** Bytes printed on stdout before the failure. */
  readonly printed: number;
}

function codeOf(failure: ObjectReadFailure): ObjectReadErrorCode {
  switch (failure.kind) {
    case 'not-found':
      return 'ERR_GCS_STREAM_NOT_FOUND';
    case 'gone':
      return 'ERR_GCS_STREAM_GONE';
    case 'retries-exhausted':
      return 'ERR_GCS_STREAM_RETRIES_EXHAUSTED';
    default:
      return 'ERR_GCS_STREAM_READ';
  }
}

function statusOf(failure: ObjectReadFailure): number | undefined {
  if (failure.kind === 'not-found' || failure.kind === 'gone') return 404;
  return failure.kind === 'rejected' ? failure.status : undefined;
}

function describe(failure: ObjectReadFailure, at: ReadPosition): string {
  const generation = at.generation ?? '?';
  switch (failure.kind) {
    case 'not-found':
      return `${at.target} does not exist`;
    case 'gone':
      if (failure.live === null) return `${at.target} was deleted while it was being read (generation ${generation})`;
      if (failure.live === undefined) {
        return `generation ${generation} of ${at.target} disappeared (deleted or replaced) while it was being read`;
      }
      return `${at.target} was replaced by generation ${failure.live} while generation ${generation} was being read`;
    case 'rejected': {
      const how = failure.status === undefined ? 'failed' : `was refused with HTTP ${failure.status}`;
      const hint = failure.status === 403 ? ' (permission denied: the caller needs storage.objects.get on the bucket)' : '';
      return `reading ${at.target} ${how}${hint}, not retried${failure.detail === undefined ? '' : `: ${failure.detail}`}`;
    }
    case 'retries-exhausted':
      return `gave up reading ${at.target} after ${failure.attempts} attempts without progress; last failure: ${failure.last}`;
    case 'unreadable-resource':
      return `GCS sent an unreadable object resource for ${at.target}`;
    case 'wrong-range':
      return `GCS answered a read from byte ${failure.start} of ${at.target} with other bytes (it ignored the Range)`;
    case 'text-media':
      return 'the HTTP client returned object media as text; it must honour responseType arraybuffer';
  }
}

/** Reading an object failed; `status` is the HTTP status when there was a response. */
export class ObjectReadError extends Error {
  /** Stable identifier, printed after the message. */
  readonly code: ObjectReadErrorCode;
  /** What went wrong. */
  readonly failure: ObjectReadFailure;
  /** HTTP status of the response that failed, if any. */
  readonly status: number | undefined;
  /** `gs://BUCKET/OBJECT`. */
  readonly target: string;
  /** The generation being read, once known. */
  readonly generation: string | undefined;
  /** Bytes printed on stdout before the failure: a rerun piped through `tail -c +N+1` can skip them. */
  readonly bytesPrinted: number;

  constructor(failure: ObjectReadFailure, at: ReadPosition, options: { status?: number } = {}) {
    // Nothing was ever printed of an object that does not exist: the count would only be noise there.
    const printed = failure.kind === 'not-found' ? '' : `; ${at.printed} bytes printed`;
    super(`${describe(failure, at)}${printed}`);
    this.name = 'ObjectReadError';
    this.code = codeOf(failure);
    this.failure = failure;
    this.status = options.status ?? statusOf(failure);
    this.target = at.target;
    this.generation = at.generation;
    this.bytesPrinted = at.printed;
  }
}
