/**
 * gcs-resumable-stream: stream data of unknown length into Google Cloud Storage through the JSON API resumable
 * upload protocol, with bounded memory, automatic recovery from transient faults, and an end-to-end checksum.
 */
export {
  createGcsWriteStream,
  GcsResumableWritable,
  type GcsResumableWritableEvents,
  type StreamMemoryStats,
  type StreamChecksumStats,
} from './resumable/writable.js';
export {
  createGcsAppendStream,
  GcsAppendableWritable,
  type AppendedObject,
  type GcsAppendableWritableEvents,
} from './append/append-writable.js';
export type { AppendableCheckpoint, GcsAppendStreamOptions, GrpcAuthClient } from './append/append-options.js';
export { createGcsReadStream, GcsReadable, READ_HIGH_WATER_MARK, READ_RANGE_BYTES, type GcsReadableEvents } from './read/gcs-readable.js';
export { DEFAULT_POLL_MS, type GcsReadStreamOptions } from './read/read-options.js';
export { MemoryPool, type MemoryPoolOptions, type MemoryPoolStats } from './core/memory-pool.js';
export type { GcsWriteStreamOptions, ObjectMetadata, Validation } from './core/options.js';
export type { Preconditions } from './core/preconditions.js';
export { DEFAULT_API_ENDPOINT, DEFAULT_BUFFER_CHUNKS, DEFAULT_CHUNK_SIZE, DEFAULT_PART_PREFIX, DEFAULT_PART_SIZE } from './core/options.js';
export { CHUNK_ALIGNMENT } from './core/validate.js';
export type { AuthorizedClient, HttpRequest, HttpResponse, HeadersLike } from './core/auth.js';
export type { ObjectResource } from './core/responses.js';
export type { UploadCheckpoint } from './core/checkpoint.js';
export type { ParallelCheckpoint, StoredPart } from './parallel/parallel-checkpoint.js';
export type { UploadWarning } from './parallel/parallel-uploader.js';
export type { StorageFileLike, StorageLike } from './core/interop.js';
export type { UploadProgress } from './resumable/upload-observer.js';
export type { WritableEvents } from './core/stream-events.js';
export { computeDelayMs, DEFAULT_RETRY, type RetryEvent, type RetryOptions, type RetryQuestion, type RetrySettings } from './core/retry.js';
export {
  AuthenticationError,
  BucketNotFoundError,
  ChecksumMismatchError,
  ComposeSourceNotFoundError,
  CreateUnconfirmedError,
  type CreateUncertainty,
  type GcsErrorCode,
  GcsUploadError,
  GrpcStatusError,
  HttpStatusError,
  InvalidArgumentError,
  ListenerError,
  NetworkError,
  NoProgressError,
  ObjectFinalizedError,
  ObjectGoneError,
  type ObjectGoneReason,
  ObjectNotFoundError,
  PermissionDeniedError,
  PreconditionFailedError,
  ProtocolError,
  RequestTimeoutError,
  RetryExhaustedError,
  SessionExpiredError,
  SizeMismatchError,
  SourceMismatchError,
  SupersededError,
  UploadAbortedError,
} from './core/errors.js';
