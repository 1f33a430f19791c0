/**
 * What `GcsResumableWritable` drives: one resumable session (`resumable/uploader.ts`) or a parallel composite
 * upload (`parallel/parallel-uploader.ts`). The writable copies writes into `window`, waits on it for room (the
 * backpressure), ends it, and awaits `start()`; it never knows which way the bytes travel.
 */
import type { GcsUploadError } from './errors.js';
import type { ObjectResource } from './responses.js';

/** Where the writable copies the writer's bytes. */
export interface WriteWindow {
  /** Copies what fits of `src` from `from`; returns the bytes copied (fewer than offered: wait for `spaceChanged`). */
  write(src: Uint8Array, from?: number): number;
  /** Resolves when room may have freed, or the upload ended (then `disposed`). */
  spaceChanged(): Promise<void>;
  /** The upload ended (either way): nothing more is taken. */
  readonly disposed: boolean;
  /** No more writes. */
  end(): void;
  /** Bytes taken from the writer (including a resumed offset). */
  readonly bytesAccepted: number;
  /** Bytes of pool blocks held now. */
  readonly bytesHeld: number;
  /** Bytes that may be held now. */
  readonly targetBytes: number;
  /** Whether the writer waits for room. */
  readonly full: boolean;
  /** Bytes whose CRC32C the process's worker computed (see the `checksumWorker` option). */
  readonly bytesHashedOnWorker: number;
}

/** One upload, from the first byte to the verified object. */
export interface UploadStrategy {
  readonly window: WriteWindow;
  /** The resumable session URI, when there is one session. */
  readonly uploadUri: string | undefined;
  /** Bytes GCS confirmed (see the writable's `bytesCommitted`). */
  readonly bytesCommitted: number;
  /** Resolves once writes may flow (a resumed upload knows what is stored). */
  readonly ready: Promise<void>;
  /** Starts the upload once; later calls return the same promise. */
  start(): Promise<ObjectResource>;
  /** See the writable's `flush()`. */
  flush(): Promise<number>;
  /** Stops everything in flight; the upload then fails with `reason`. */
  abort(reason: GcsUploadError): void;
}
