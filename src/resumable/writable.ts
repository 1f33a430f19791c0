/**
 * `GcsResumableWritable`: Node stream plumbing only. Writes are copied into the uploader's replay window (the
 * write callback fires once the bytes are copied, or once space frees up: that is the backpressure), `_final`
 * ends the window and waits for the verified object, `_destroy` aborts and cancels. It never builds a request.
 */
import { Writable } from 'node:stream';
import { GcsUploadError, ListenerError, SizeMismatchError, UploadAbortedError } from '../core/errors.js';
import type { MemoryPoolStats } from '../core/memory-pool.js';
import { normalizeOptions, type GcsWriteStreamOptions, type NormalizedOptions } from '../core/options.js';
import type { UploadCheckpoint } from '../core/checkpoint.js';
import type { RetryEvent } from '../core/retry.js';
import type { WritableEvents } from '../core/stream-events.js';
import type { ObjectResource } from '../core/responses.js';
import type { UploadStrategy } from '../core/upload-strategy.js';
import type { ParallelCheckpoint } from '../parallel/parallel-checkpoint.js';
import { ParallelUploader, type UploadWarning } from '../parallel/parallel-uploader.js';
import type { UploadProgress } from './upload-observer.js';
import { Uploader } from './uploader.js';

/** A stream's memory figures (see {@link GcsResumableWritable.memory}). */
export interface StreamMemoryStats {
  /** Bytes of pool blocks the window holds now: the uncommitted bytes, rounded up to 256 KiB blocks. */
  bytesHeld: number;
  /** Bytes the window may hold now; it grows while memory holds the writer back (up to `chunkSize × bufferChunks`). */
  targetBytes: number;
  /** Whether the writer waits for room (the window is at its target, or the pool has no block to lend). */
  writerWaiting: boolean;
  /** The figures of the pool the blocks come from. */
  pool: MemoryPoolStats;
}

/** Where the stream's CRC32C is computed (see the `checksumWorker` option). */
export interface StreamChecksumStats {
  /** Whether filled blocks go to the process's CRC32C worker. */
  worker: boolean;
  /** Bytes whose CRC32C the worker computed; the rest of `bytesAccepted` was hashed on the stream's thread. */
  bytesHashedOnWorker: number;
}

/** Events beyond those of `stream.Writable`. */
export interface GcsResumableWritableEvents {
  /** The session is open; the URI can resume it (treat it as a secret). */
  session: (uploadUri: string) => void;
  /** The committed offset moved (and at the end). Both counters only grow. */
  progress: (progress: UploadProgress) => void;
  /** A transient failure; the stream will wait `delayMs` and recover. */
  retry: (event: RetryEvent) => void;
  /**
   * After the session opens and after every commit: a JSON-serializable value to pass back as `resume`. With
   * `parallel > 1`: a {@link ParallelCheckpoint} once the first temporary part starts and after every stored part.
   */
  checkpoint: (checkpoint: UploadCheckpoint | ParallelCheckpoint) => void;
  /**
   * With `parallel > 1`: the object was composed, but temporary objects could not be deleted (also in
   * `stream.leftovers`); emitted before `finish`.
   */
  warning: (warning: UploadWarning) => void;
}

/** Every event of {@link GcsResumableWritable}: its own and those of any `Writable`. */
type ResumableEvents = GcsResumableWritableEvents & WritableEvents;

// The listener methods accept the documented events only, each with its listener's type: a misspelled event does
// not compile. The merge redeclares these methods, adding no members, so it is safe.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface GcsResumableWritable {
  on<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  once<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  off<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  addListener<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  removeListener<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  prependListener<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
  prependOnceListener<E extends keyof ResumableEvents>(event: E, listener: ResumableEvents[E]): this;
}

/**
 * The queue in front of the window (`writableHighWaterMark`): Node's default, 16 KiB. A write that fits in the window
 * completes before `write()` returns, and Node then reports room whatever the write's size, so the queue only fills
 * while the window is full (checked on Node 20, 22 and 24: 64 KiB writes into a 16 KiB queue that completes them at
 * once never return false), and everything in it is memory outside the pool: at 256 KiB, 300 streams waiting for
 * the pool could hold up to 75 MiB in their queues. The memory bound per stream: the window's blocks plus the write being copied
 * in and at most 16 KiB queued behind it.
 */
const QUEUE_BYTES = 16 * 1024;

/** A Writable that streams everything written to it into one GCS object through a resumable upload. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class GcsResumableWritable extends Writable {
  readonly #options: NormalizedOptions;
  readonly #uploader: UploadStrategy;
  #object: ObjectResource | undefined;
  #failure: GcsUploadError | undefined;

  /** Validates `options` (throwing `InvalidArgumentError` synchronously) and opens the session right away. */
  constructor(options: GcsWriteStreamOptions) {
    const normalized = normalizeOptions(options);
    const signal = normalized.signal;
    super({
      decodeStrings: true,
      highWaterMark: QUEUE_BYTES,
      // Node destroys a Writable whose signal is already aborted inside its constructor, before this class's fields
      // exist (and `_destroy` would throw on them): such a signal is handled below instead.
      ...(signal && !signal.aborted ? { signal } : {}),
    });
    this.#options = normalized;
    const observer = {
      session: (uri: string) => this.emit('session', uri),
      progress: (progress: UploadProgress) => this.emit('progress', progress),
      retry: (event: RetryEvent) => this.emit('retry', event),
      checkpoint: (checkpoint: UploadCheckpoint | ParallelCheckpoint) => this.emit('checkpoint', checkpoint),
      warning: (warning: UploadWarning) => this.emit('warning', warning),
    };
    this.#uploader = normalized.parallel > 1 ? new ParallelUploader(normalized, observer) : new Uploader(normalized, observer);
    if (signal?.aborted) {
      // Aborted before it began: the upload stops before its first request (no session, no object).
      const aborted = new UploadAbortedError(signal.reason);
      this.#uploader.abort(aborted);
      this.destroy(aborted);
    }
    // Open the session while the first chunk fills; failures surface as the stream's error.
    this.#uploader.start().then(
      (object) => {
        this.#object = object;
      },
      (error: unknown) => {
        this.#failure = error as GcsUploadError;
        this.destroy(this.#failure);
      },
    );
  }

  /** Bucket this stream writes to. */
  get bucket(): string {
    return this.#options.bucket;
  }

  /** Object name this stream writes to. */
  get name(): string {
    return this.#options.name;
  }

  /** The resumable session URI once the session is open (a bearer capability: do not log it). */
  get uploadUri(): string | undefined {
    return this.#uploader.uploadUri;
  }

  /** The object resource GCS returned; set when `finish` is emitted. */
  get object(): ObjectResource | undefined {
    return this.#object;
  }

  /** Bytes taken from the writer so far. */
  get bytesAccepted(): number {
    return this.#uploader.window.bytesAccepted;
  }

  /**
   * With `parallel > 1`: temporary objects that could not be deleted, after the object was composed (a `warning`
   * event said so) or after a failure (the error's `leftovers` lists them too; a `destroy()` without an error
   * has only this); empty otherwise.
   */
  get leftovers(): string[] {
    return this.#uploader instanceof ParallelUploader ? this.#uploader.leftovers : [];
  }

  /**
   * Bytes GCS has confirmed so far. With `parallel > 1`: the bytes of the contiguous prefix of stored parts.
   */
  get bytesCommitted(): number {
    return this.#uploader.bytesCommitted;
  }

  /**
   * Commits what can be committed now, every full 256 KiB block of the bytes accepted so far, and resolves with
   * the committed offset once GCS has confirmed it (a `checkpoint` event has then been emitted for it); rejects if
   * the upload fails. The JSON API cannot commit a partial block before the end: the bytes after the last full
   * block wait for more data or `end()`. With the `checkpoint` events this gives a crash bound you can rely on:
   * resume from the last checkpoint and at most the bytes after it are to be written again. With `parallel > 1`
   * it rejects with `InvalidArgumentError`: nothing is visible before the compose at `end()`.
   */
  flush(): Promise<number> {
    return this.#uploader.flush();
  }

  /** The stream's memory figures (for metrics): what its window holds and may hold, and its pool's figures. */
  get memory(): StreamMemoryStats {
    const window = this.#uploader.window;
    return { bytesHeld: window.bytesHeld, targetBytes: window.targetBytes, writerWaiting: window.full, pool: this.#options.memory.stats() };
  }

  /** Where the stream's CRC32C is computed, for metrics (see the `checksumWorker` option). */
  get checksum(): StreamChecksumStats {
    return { worker: this.#options.checksumWorker, bytesHashedOnWorker: this.#uploader.window.bytesHashedOnWorker };
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // A resumed stream takes no bytes until it knows how many the session already has.
    if (!this.#options.resume && !this.#options.parallelResume) {
      callback();
      return;
    }
    Promise.race([this.#uploader.ready, this.#uploader.start()]).then(
      () => callback(),
      (error: unknown) => callback(error as Error),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (this.#options.size !== undefined && this.#exceedsSize(chunk.length, callback)) return;
    // Fast path: the whole write fits in the window (no closure, no promise: this runs once per write).
    const copied = this.#uploader.window.write(chunk);
    if (copied === chunk.length) {
      callback();
      return;
    }
    this.#acceptSlowly([chunk], 0, copied).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (
      this.#options.size !== undefined &&
      this.#exceedsSize(
        chunks.reduce((sum, entry) => sum + entry.chunk.length, 0),
        callback,
      )
    )
      return;
    this.#acceptSlowly(
      chunks.map((entry) => entry.chunk),
      0,
      0,
    ).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const size = this.#options.size;
    if (size !== undefined && this.bytesAccepted !== size) {
      this.#failSize(new SizeMismatchError(size, this.bytesAccepted), callback);
      return;
    }
    this.#uploader.window.end();
    this.#uploader.start().then(
      (object) => {
        this.#object = object;
        try {
          this.emit('progress', { bytesAccepted: this.bytesAccepted, bytesCommitted: this.bytesCommitted });
        } catch (error) {
          // The object exists (`object` says which); the caller's listener failed, and the stream says so.
          const failure = new ListenerError('progress', error);
          failure.object = object;
          callback(failure);
          return;
        }
        callback();
      },
      (error: unknown) => callback(error as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#object !== undefined) {
      callback(error);
      return;
    }
    // Our own failure passes through as is; anything else (a source error, destroy(), an aborted signal) stops
    // the upload, which cancels the session, and is reported as an UploadAbortedError carrying the original.
    const ownFailure = error !== null && error === this.#failure;
    if (!ownFailure) this.#uploader.abort(new UploadAbortedError(error ?? undefined));
    // After end() a plain destroy() must still be an error: otherwise pipeline() would resolve as if the upload
    // had finished (Node treats an ended, flushed writable as done).
    const silent = error === null && !this.writableEnded;
    this.#uploader.start().then(
      (object) => {
        // The upload completed before the abort took effect: say so through `object`.
        this.#object = object;
        callback(error);
      },
      (failure: unknown) => {
        // Aborted after GCS had finalized: the object exists and the failure names it.
        const existing = failure instanceof GcsUploadError ? failure.object : undefined;
        if (existing !== undefined) this.#object = existing as ObjectResource;
        callback(ownFailure ? error : silent ? null : (failure as Error));
      },
    );
  }

  /** With a declared size: fails the stream (and the upload, before anything is sent) if `incoming` bytes exceed it. */
  #exceedsSize(incoming: number, callback: (error?: Error | null) => void): boolean {
    const size = this.#options.size!;
    const after = this.bytesAccepted + incoming;
    if (after <= size) return false;
    this.#failSize(new SizeMismatchError(size, after), callback);
    return true;
  }

  /** The upload fails with `error` (cancelling the session), and so does the write or end that found it. */
  #failSize(error: SizeMismatchError, callback: (error?: Error | null) => void): void {
    this.#uploader.abort(error);
    callback(error);
  }

  /**
   * Copies `chunks` (from chunk `index`, byte `offset`) into the window, waiting for space as the uploader frees
   * it; rejects if the upload fails or the stream is destroyed meanwhile.
   */
  async #acceptSlowly(chunks: Buffer[], index: number, offset: number): Promise<void> {
    const window = this.#uploader.window;
    for (;;) {
      while (index < chunks.length) {
        const chunk = chunks[index]!;
        offset += window.write(chunk, offset);
        if (offset < chunk.length) break;
        index += 1;
        offset = 0;
      }
      if (index === chunks.length) return;
      // The window wakes its writer when space frees and when the upload ends (dispose), never leaving anything
      // attached to the long-lived upload promise per wait.
      await window.spaceChanged();
      if (window.disposed) {
        await this.#uploader.start();
        throw new UploadAbortedError();
      }
      if (this.#failure) throw this.#failure;
      if (this.destroyed) throw new UploadAbortedError();
    }
  }
}

/** Creates a {@link GcsResumableWritable}: `await pipeline(source, createGcsWriteStream({ bucket, name }))`. */
export function createGcsWriteStream(options: GcsWriteStreamOptions): GcsResumableWritable {
  return new GcsResumableWritable(options);
}
