/**
 * One part of a parallel composite upload: a replay window filled by the writer and one resumable upload (the
 * existing `Uploader`, so a part has a session's recovery, retry budget, CRC32C check and typed errors) that sends
 * it. The window exists before the upload: the first part is filled before it is known whether the source is longer
 * than one part, and so whether it becomes a temporary object or the destination itself.
 */
import { ObjectHasher } from '../core/checksum.js';
import type { NormalizedOptions } from '../core/options.js';
import type { ObjectResource } from '../core/responses.js';
import { BlockWindow } from '../resumable/block-window.js';
import type { UploadObserver } from '../resumable/upload-observer.js';
import { Uploader } from '../resumable/uploader.js';
import { CHUNK_ALIGNMENT } from '../core/validate.js';
import type { GcsUploadError } from '../core/errors.js';

/**
 * The request size of a part's session: the largest multiple of 256 KiB at most `chunkSize` that divides
 * `partSize`, so that a part's window holds the whole part (`bufferChunks` = partSize / chunk) and requests stay
 * whole chunks.
 */
export function partChunkSize(chunkSize: number, partSize: number): number {
  let chunk = Math.min(chunkSize, partSize);
  chunk -= chunk % CHUNK_ALIGNMENT;
  while (partSize % chunk !== 0) chunk -= CHUNK_ALIGNMENT;
  return chunk;
}

/**
 * The options of a part's session (or, for a source of one part, of the destination's): the stream's transport,
 * credentials, endpoint, retry policy, KMS key and billing project, with the window limits of a part. `name` is
 * a temporary part's name unless `destination`; `size` its declared size, if known.
 */
export function partOptions(base: NormalizedOptions, name: string, size: number | undefined, destination: boolean): NormalizedOptions {
  const chunkSize = partChunkSize(base.chunkSize, base.partSize);
  const shared = {
    ...base,
    name,
    size,
    chunkSize,
    bufferChunks: base.partSize / chunkSize,
    // The window holds the whole part: requests of exactly one chunk, nothing to pace.
    adaptiveRequests: false,
    maxUncommittedMs: Number.POSITIVE_INFINITY,
    signal: undefined,
    resume: undefined,
    parallelResume: undefined,
    parallel: 1,
    sourceOffset: 0,
  };
  if (destination) return Object.freeze({ ...shared, validation: base.validation === false ? false : 'crc32c' });
  // A part carries none of the user's metadata or preconditions (those are the final compose's): it must be new.
  const query: Record<string, string> = { ifGenerationMatch: '0' };
  if (base.query.userProject !== undefined) query.userProject = base.query.userProject;
  if (base.query.kmsKeyName !== undefined) query.kmsKeyName = base.query.kmsKeyName;
  return Object.freeze({ ...shared, resource: Object.freeze({}), query: Object.freeze(query), validation: 'crc32c' });
}

/** A part's window and, once started, its upload. */
export class PartUpload {
  /** Part index (0-based). */
  readonly index: number;
  /** Temporary object name (`${partPrefix}${uploadId}/${index}`). */
  readonly name: string;
  readonly window: BlockWindow;
  /** CRC32C of the part's bytes, fed by the window. */
  readonly hasher: ObjectHasher;
  /** The part's session options (see {@link partOptions}). */
  readonly options: NormalizedOptions;
  #uploader: Uploader | undefined;
  #closed = false;

  /** `declaredSize`: the part's size when known up front (the stream's `size` was given). */
  constructor(base: NormalizedOptions, index: number, name: string, declaredSize: number | undefined) {
    this.index = index;
    this.name = name;
    this.hasher = new ObjectHasher('crc32c');
    this.options = partOptions(base, name, declaredSize, false);
    this.window = new BlockWindow(
      {
        requestBytes: this.options.chunkSize,
        capBytes: base.partSize,
        exact: true,
        retainWrites: base.retainWrites,
        checksumWorker: base.checksumWorker,
      },
      base.memory.open(),
      0,
      this.hasher,
      declaredSize,
    );
  }

  /** Whether the upload was started. */
  get started(): boolean {
    return this.#uploader !== undefined;
  }

  /** Whether the part has all its bytes (its window ended). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The part has all its bytes. */
  close(): void {
    this.#closed = true;
    this.window.end();
  }

  /**
   * Starts the upload of the window, as the part's temporary object or (a source of one part) under the
   * destination's `options`; later calls return the same promise.
   */
  start(observer: UploadObserver, options: NormalizedOptions = this.options): Promise<ObjectResource> {
    this.#uploader ??= new Uploader(options, observer, { window: this.window, hasher: this.hasher });
    return this.#uploader.start();
  }

  /** Stops the upload (which then fails with `reason` and cancels its session), or gives back an unsent window. */
  abort(reason: GcsUploadError): void {
    if (this.#uploader) this.#uploader.abort(reason);
    else this.window.dispose();
  }
}
