/**
 * How the uploader reports to the stream: progress, retries, checkpoints, the session. A listener of the stream's
 * events runs inside these calls, so they are guarded: its exception must not look like a network fault.
 */
import type { UploadCheckpoint } from '../core/checkpoint.js';
import { ListenerError } from '../core/errors.js';
import type { RetryEvent } from '../core/retry.js';

/** Progress counters; both only grow. */
export interface UploadProgress {
  /** Bytes taken from the writer. */
  bytesAccepted: number;
  /** Bytes GCS confirmed. */
  bytesCommitted: number;
}

/** Callbacks through which the uploader reports to the stream. */
export interface UploadObserver {
  session(uploadUri: string): void;
  progress(progress: UploadProgress): void;
  retry(event: RetryEvent): void;
  checkpoint(checkpoint: UploadCheckpoint): void;
}

/**
 * The observer, with every call guarded: a listener that throws is a bug in the caller's code, not a transient
 * fault, so it must not reach the retry loop (which would retry it, and open a new session each time). `fail`
 * stops the upload with a ListenerError instead.
 */
export function guardObserver(observer: UploadObserver, fail: (error: ListenerError) => void): UploadObserver {
  const guard =
    <T>(event: keyof UploadObserver, call: (value: T) => void) =>
    (value: T): void => {
      try {
        call(value);
      } catch (error) {
        fail(new ListenerError(event, error));
      }
    };
  return {
    session: guard('session', (uri: string) => observer.session(uri)),
    progress: guard('progress', (progress: UploadProgress) => observer.progress(progress)),
    retry: guard('retry', (event: RetryEvent) => observer.retry(event)),
    checkpoint: guard('checkpoint', (checkpoint: UploadCheckpoint) => observer.checkpoint(checkpoint)),
  };
}
