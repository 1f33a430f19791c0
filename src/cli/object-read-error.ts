/**
 * `ObjectReadError`: `gcs-stream cat` could not read the object. The CLI exits with code 1 for it.
 */

/** Stable codes of {@link ObjectReadError}. */
export type ObjectReadErrorCode =
  /** The object does not exist (or is not visible to these credentials). */
  | 'ERR_GCS_STREAM_NOT_FOUND'
  /** The object disappeared (deleted, or replaced by another generation) while it was being followed. */
  | 'ERR_GCS_STREAM_GONE'
  /** GCS answered with an error, or with a response that cannot be read. */
  | 'ERR_GCS_STREAM_READ';

/** Reading an object failed; `status` is the HTTP status when there was a response. */
export class ObjectReadError extends Error {
  /** Stable identifier, printed after the message. */
  readonly code: ObjectReadErrorCode;
  /** HTTP status of the response that failed, if any. */
  readonly status: number | undefined;

  constructor(code: ObjectReadErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'ObjectReadError';
    this.code = code;
    this.status = status;
  }
}
