/**
 * `GcsAppendableWritable`: the Node stream face of an appendable write. Stream plumbing only (`_write`, `_final`,
 * `_destroy`), `flush()`, and the documented events; the protocol lives in the uploader and the session.
 */
import { Writable } from 'node:stream';
import { GcsUploadError, ListenerError, UploadAbortedError } from '../core/errors.js';
import type { RetryEvent } from '../core/retry.js';
import type { WritableEvents } from '../core/stream-events.js';
import { normalizeAppendOptions, type AppendableCheckpoint, type GcsAppendStreamOptions } from './append-options.js';
import { AppendUploader } from './append-uploader.js';
import { int64Of, int64TextOf, stringOf } from '../grpc/proto3.js';
import type { WireObject } from '../grpc/wire-types.js';

/** The finalized object, as `object` after `finish`. */
export interface AppendedObject {
  bucket: string;
  name: string;
  generation: string;
  size: number;
  /** Base64 of the big-endian CRC32C, as the JSON API prints it. */
  crc32c: string | undefined;
}

/** The events of {@link GcsAppendableWritable}, next to those of any `Writable`. */
export interface GcsAppendableWritableEvents {
  /** The object's generation, once the server created (or the stream reopened) it. */
  generation: (generation: string) => void;
  /** After every persist (and once the object exists): store it to take the object over after a crash. */
  checkpoint: (checkpoint: AppendableCheckpoint) => void;
  /** Bytes accepted from the writer and bytes persisted (object offsets). */
  progress: (progress: { bytesAccepted: number; bytesCommitted: number }) => void;
  /** A transient failure is about to be retried. */
  retry: (event: RetryEvent) => void;
}

/** Every event of {@link GcsAppendableWritable}: its own and those of any `Writable`. */
type AppendEvents = GcsAppendableWritableEvents & WritableEvents;

// The listener methods accept the documented events only, each with its listener's type: a misspelled event does
// not compile. The merge redeclares these methods, adding no members, so it is safe.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface GcsAppendableWritable {
  on<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  once<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  off<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  addListener<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  removeListener<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  prependListener<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
  prependOnceListener<E extends keyof AppendEvents>(event: E, listener: AppendEvents[E]): this;
}

/**
 * A `Writable` into an appendable object over gRPC (zonal buckets). Every persisted byte is readable at once;
 * `flush()` persists everything accepted; `end()` finalizes (or, with `finalize: false`, leaves the object
 * appendable). Create it with {@link createGcsAppendStream}.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class GcsAppendableWritable extends Writable {
  readonly #uploader: AppendUploader;
  readonly #maxUncommittedMs: number;
  #object: AppendedObject | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  /** The error the stream was destroyed with, as emitted (always a `GcsUploadError`). */
  #destroyedWith: GcsUploadError | undefined;

  /** Validates `options` (throwing `InvalidArgumentError`); nothing connects before the first write or `end()`. */
  constructor(options: GcsAppendStreamOptions) {
    const normalized = normalizeAppendOptions(options);
    super({ highWaterMark: 1024 * 1024 });
    this.#maxUncommittedMs = normalized.maxUncommittedMs;
    this.#uploader = new AppendUploader(normalized, {
      generation: (generation) => this.#emitSafely('generation', generation),
      checkpoint: (checkpoint) => this.#emitSafely('checkpoint', checkpoint),
      progress: (progress) => this.#emitSafely('progress', progress),
      retry: (event) => this.#emitSafely('retry', event),
    });
    this.#signal = normalized.signal;
    if (this.#signal !== undefined) {
      const signal = this.#signal;
      if (signal.aborted) queueMicrotask(() => this.destroy(new UploadAbortedError(signal.reason)));
      else {
        this.#onAbort = () => this.destroy(new UploadAbortedError(signal.reason));
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  /** The finalized object, after `finish` (undefined with `finalize: false`). */
  get object(): AppendedObject | undefined {
    return this.#object;
  }

  /** Bytes the server reported persisted. */
  get bytesCommitted(): number {
    return this.#uploader.bytesCommitted;
  }

  /**
   * Persists everything written so far (writes already handed to the stream included) and resolves with the
   * persisted size the server reports; readers see those bytes at once. A failure also destroys the stream.
   */
  async flush(): Promise<number> {
    if (this.destroyed) throw this.#destroyedWith ?? new UploadAbortedError();
    // An empty write queues behind the writes the stream still buffers: they are accepted before the flush.
    if (!this.writableEnded) {
      await new Promise<void>((resolve, reject) =>
        this.write(Buffer.alloc(0), (error) => (error ? reject(this.#destroyedWith ?? this.#failure(error)) : resolve())),
      );
    }
    try {
      return await this.#uploader.flush();
    } catch (error) {
      this.destroy(error as Error);
      throw error;
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0) return callback();
    this.#uploader.write(chunk).then(
      () => {
        this.#armTimer();
        callback();
      },
      (error: unknown) => callback(this.#failure(error)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    this.#uploader.end().then(
      (resource) => {
        if (resource !== undefined) this.#object = toObject(resource);
        callback();
      },
      (error: unknown) => callback(this.#failure(error)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#object === undefined) this.#uploader.abort(error ?? undefined);
    // Every error is a GcsUploadError: anything else (destroy(err), a failing piped source) stopped the write. Once
    // the write finished there is nothing left to stop: destroy(err) then passes its error on as it is.
    if (this.writableFinished) return callback(error);
    // After end() a plain destroy() must still be an error: pipeline() would otherwise reject with Node's untyped
    // premature close, or resolve as if the object had been finalized.
    const stopped = error ?? (this.writableEnded ? new UploadAbortedError() : null);
    this.#destroyedWith = stopped === null ? undefined : this.#failure(stopped);
    callback(this.#destroyedWith ?? null);
  }

  /** Persists on a timer, so that no accepted byte waits longer than `maxUncommittedMs`. */
  #armTimer(): void {
    if (this.#timer !== undefined || !Number.isFinite(this.#maxUncommittedMs)) return;
    if (this.#uploader.bytesCommitted >= this.#uploader.bytesAccepted) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#uploader.flush().then(
        () => this.#armTimer(),
        (error: unknown) => this.destroy(this.#failure(error)),
      );
    }, this.#maxUncommittedMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #failure(error: unknown): GcsUploadError {
    const failure = error instanceof GcsUploadError ? error : new UploadAbortedError(error);
    return this.#uploader.decorate(failure);
  }

  /** A listener that throws stops the write: a bug in the caller's code, not a fault to retry. */
  #emitSafely(event: string, value: unknown): void {
    try {
      this.emit(event, value);
    } catch (error) {
      this.destroy(new ListenerError(event, error));
    }
  }
}

function toObject(resource: WireObject): AppendedObject {
  const crc = resource.checksums?.crc32c;
  let crc32c: string | undefined;
  if (crc !== undefined) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(crc >>> 0, 0);
    crc32c = bytes.toString('base64');
  }
  return {
    bucket: stringOf(resource.bucket).replace(/^projects\/[^/]+\/buckets\//, ''),
    name: stringOf(resource.name),
    generation: int64TextOf(resource.generation),
    size: int64Of(resource.size),
    crc32c,
  };
}

/** Creates a {@link GcsAppendableWritable}: a live, appendable object over gRPC (see the README's section). */
export function createGcsAppendStream(options: GcsAppendStreamOptions): GcsAppendableWritable {
  return new GcsAppendableWritable(options);
}
