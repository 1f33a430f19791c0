/**
 * A parallel composite upload of one stream: the source is cut into parts of `partSize` bytes, each sent as a
 * temporary object through its own resumable upload (part-upload.ts: the existing `Uploader`), up to `parallel` at
 * once; at the end they are composed in order into the destination (compose-tiers.ts), the result's CRC32C is
 * checked against the parts' combined, and every temporary object is deleted. A source of at most one part never
 * becomes a temporary object: the first part is held until the source either ends (it is then uploaded as the
 * destination itself) or shows a byte beyond it.
 *
 * Memory: the part being filled and at most `parallel` parts in flight, each in a window of at most `partSize`
 * bytes of pool blocks; the writer waits while every slot is taken.
 *
 * Failure, `destroy()` or an aborted signal: every part's upload is stopped (its session cancelled), no compose
 * starts after it, and every temporary object that may exist is deleted before the stream errors; those that could
 * not be are listed on the error (`leftovers`). A compose already sent is awaited rather than cut off, so that what
 * exists is known.
 */
import { randomBytes } from 'node:crypto';
import { defaultAuthClient } from '../core/auth.js';
import { continueCrc32c, crc32cFromBase64, crc32cToBase64 } from '../core/checksum.js';
import { combineCrc32cs } from '../core/crc32c-combine.js';
import {
  ChecksumMismatchError,
  GcsUploadError,
  InvalidArgumentError,
  ListenerError,
  SourceMismatchError,
  UploadAbortedError,
} from '../core/errors.js';
import type { Mismatch } from '../core/outcome.js';
import type { NormalizedOptions } from '../core/options.js';
import type { ObjectResource } from '../core/responses.js';
import type { RetryEvent } from '../core/retry.js';
import type { UploadStrategy, WriteWindow } from '../core/upload-strategy.js';
import { asUploadError } from '../resumable/recover.js';
import type { UploadObserver, UploadProgress } from '../resumable/upload-observer.js';
import { Uploader } from '../resumable/uploader.js';
import { composeInTiers, type ComposeInput } from './compose-tiers.js';
import { ObjectApi } from './object-api.js';
import { contiguousBytes, type ParallelCheckpoint, type StoredPart } from './parallel-checkpoint.js';
import { partOptions, PartUpload } from './part-upload.js';

/** A `warning` event: the upload succeeded, but some temporary objects could not be deleted. */
export interface UploadWarning {
  readonly code: 'ERR_GCS_UPLOAD_LEFTOVERS';
  readonly message: string;
  /** The temporary objects left in the bucket. */
  readonly leftovers: string[];
  /** Why the first of them could not be deleted. */
  readonly cause: GcsUploadError | undefined;
}

/** How the parallel uploader reports to the stream. */
export interface ParallelObserver {
  progress(progress: UploadProgress): void;
  retry(event: RetryEvent): void;
  checkpoint(checkpoint: ParallelCheckpoint): void;
  warning(warning: UploadWarning): void;
}

/** A source of one part and a parallel upload, from the first byte to the composed, verified object. */
export class ParallelUploader implements UploadStrategy, WriteWindow {
  readonly #options: NormalizedOptions;
  readonly #observer: ParallelObserver;
  readonly #api: ObjectApi;
  readonly #uploadId: string;
  /** `${partPrefix}${uploadId}/`: every temporary object's name starts with it. */
  readonly #prefix: string;
  readonly #abort = new AbortController();
  /** Parts being filled or uploaded, by index. */
  readonly #parts = new Map<number, PartUpload>();
  /** Each started part's upload, resolving to the stored part. */
  readonly #results: Array<Promise<StoredPart>> = [];
  /** Stored parts by index (uploaded by this stream, or found stored when resuming). */
  readonly #stored = new Map<number, StoredPart>();
  /** Stored parts found when resuming that the source will pass through: its bytes are checked against them. */
  readonly #resumed = new Map<number, StoredPart>();
  /** Every temporary object that may exist, with its generation when known: what cleanup deletes. */
  readonly #temps = new Map<string, string | undefined>();
  readonly #partObserver: UploadObserver;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #current: PartUpload | undefined;
  #accepted: number;
  /** Parts that have all their bytes and are still uploading. */
  #inFlight = 0;
  #waitingForSlot = false;
  #ended = false;
  #announced = false;
  /** The destination's own upload, when the source fits in one part. */
  #small: Uploader | undefined;
  /** Bytes the CRC32C worker hashed for parts no longer in #parts. */
  #hashedBySettled = 0;
  /** CRC32C of the source's bytes so far within the resumed part it passes through. */
  #skipCrc = 0;
  #result: Promise<ObjectResource> | undefined;
  #leftovers: string[] = [];
  #wake: (() => void) | undefined;
  #changed: Promise<void> | undefined;

  constructor(options: NormalizedOptions, observer: ParallelObserver) {
    // One client for every part and call: credentials are obtained once.
    this.#options = Object.freeze({ ...options, authClient: options.authClient ?? defaultAuthClient(options.isEmulator) });
    this.#observer = observer;
    this.#api = ObjectApi.fromOptions(this.#options, undefined, (event) => this.#report('retry', () => observer.retry(event)));
    // 128 random bits: the parts' names are not to be guessed by whoever can list other prefixes.
    this.#uploadId = options.parallelResume?.uploadId ?? randomBytes(16).toString('base64url');
    this.#prefix = `${options.partPrefix}${this.#uploadId}/`;
    this.#accepted = options.sourceOffset;
    this.#partObserver = {
      session: () => {},
      progress: () => {},
      retry: (event) => observer.retry(event),
      checkpoint: () => {},
    };
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    if (!options.parallelResume) this.#resolveReady();
  }

  /** The writer's side: the uploader is its own window. */
  get window(): WriteWindow {
    return this;
  }

  /** A parallel upload has no one session URI. */
  get uploadUri(): string | undefined {
    return this.#small?.uploadUri;
  }

  /** Bytes of the contiguous prefix of stored parts (of the destination, for a source of one part). */
  get bytesCommitted(): number {
    if (this.#small) return this.#small.bytesCommitted;
    return contiguousBytes(this.#stored.values(), this.#options.partSize);
  }

  /** The random id the temporary objects are named under. */
  get uploadId(): string {
    return this.#uploadId;
  }

  /** Temporary objects left in the bucket (deletes that failed), after a success or a failure. */
  get leftovers(): string[] {
    return [...this.#leftovers];
  }

  get ready(): Promise<void> {
    return this.#ready;
  }

  get bytesAccepted(): number {
    return this.#accepted;
  }

  get disposed(): boolean {
    return this.#abort.signal.aborted;
  }

  get bytesHeld(): number {
    let held = this.#small?.window.bytesHeld ?? 0;
    for (const part of this.#parts.values()) held += part.window.bytesHeld;
    return held;
  }

  get bytesHashedOnWorker(): number {
    let hashed = this.#hashedBySettled + (this.#small?.window.bytesHashedOnWorker ?? 0);
    for (const part of this.#parts.values()) hashed += part.window.bytesHashedOnWorker;
    return hashed;
  }

  get targetBytes(): number {
    return (this.#options.parallel + 1) * this.#options.partSize;
  }

  get full(): boolean {
    return this.#waitingForSlot || (this.#current?.window.full ?? false);
  }

  start(): Promise<ObjectResource> {
    this.#result ??= this.#run();
    return this.#result;
  }

  /** Nothing is visible before the compose at `end()`: there is nothing to flush to. */
  flush(): Promise<number> {
    return Promise.reject(
      new InvalidArgumentError('flush() cannot commit anything with parallel > 1: nothing is visible before the compose at end()'),
    );
  }

  abort(reason: GcsUploadError): void {
    this.#fail(reason);
  }

  write(src: Uint8Array, from = 0): number {
    const partSize = this.#options.partSize;
    let at = from;
    this.#waitingForSlot = false;
    while (at < src.length && !this.#abort.signal.aborted) {
      const index = Math.floor(this.#accepted / partSize);
      const within = this.#accepted - index * partSize;
      const resumed = this.#resumed.get(index);
      if (resumed !== undefined) {
        at += this.#skip(resumed, within, src, at);
        continue;
      }
      let part = this.#current;
      if (part !== undefined && part.index !== index) {
        this.#close(part);
        part = undefined;
      }
      if (part === undefined) {
        if (this.#inFlight >= this.#options.parallel) {
          this.#waitingForSlot = true;
          break;
        }
        part = this.#open(index);
      }
      const wanted = Math.min(src.length - at, partSize - within);
      const copied = part.window.write(at === 0 && wanted === src.length ? src : src.subarray(at, at + wanted));
      this.#accepted += copied;
      at += copied;
      if (copied < wanted) {
        // A held first part short of its size waits for the pool, and nothing of it can be sent to free a block:
        // with every block of the pool held so (a small pool, or many streams in their first part) no stream
        // could ever go on. It is uploaded as a temporary part from here; a source that then ends within it is
        // composed from that one part.
        if (!part.started) this.#startPart(part);
        break;
      }
    }
    return at - from;
  }

  spaceChanged(): Promise<void> {
    if (this.#abort.signal.aborted) return Promise.resolve();
    const part = this.#current;
    // A full part window wakes its writer itself (commits, the pool, an abort all interrupt it).
    if (!this.#waitingForSlot && part !== undefined) return part.window.spaceChanged();
    return this.#nextChange();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#current === undefined && this.#parts.size === 0 && this.#stored.size === 0 && this.#results.length === 0) {
      this.#open(Math.floor(this.#accepted / this.#options.partSize)); // an empty source: one empty object
    }
    const part = this.#current;
    if (part !== undefined && !part.started && part.index === 0 && !this.#knownLong()) {
      // The source fits in one part: that part is the destination, with every option of the stream.
      part.window.end();
      this.#current = undefined;
      this.#parts.delete(part.index);
      this.#small = new Uploader(
        partOptions(this.#options, this.#options.name, this.#options.size, true),
        {
          session: () => {},
          progress: (progress) => this.#observer.progress(progress),
          retry: (event) => this.#observer.retry(event),
          checkpoint: () => {},
        },
        { window: part.window, hasher: part.hasher },
      );
    } else if (part !== undefined) {
      this.#close(part);
    }
    this.#notify();
  }

  /** Whether the source is known to be longer than one part before it ends. */
  #knownLong(): boolean {
    const size = this.#options.size;
    return this.#stored.size > 0 || this.#accepted > this.#options.partSize || (size !== undefined && size > this.#options.partSize);
  }

  #open(index: number): PartUpload {
    const { size, partSize } = this.#options;
    const declared = size === undefined ? undefined : Math.min(partSize, size - index * partSize);
    const part = new PartUpload(this.#options, index, `${this.#prefix}${index}`, declared);
    this.#parts.set(index, part);
    this.#current = part;
    // The first part waits until the source is known to be longer than it (see end()).
    if (index > 0 || this.#knownLong()) this.#startPart(part);
    return part;
  }

  #close(part: PartUpload): void {
    part.close();
    this.#current = undefined;
    this.#inFlight += 1;
    if (!part.started) this.#startPart(part);
  }

  #startPart(part: PartUpload): void {
    this.#temps.set(part.name, undefined);
    if (!this.#announced) {
      // The upload id is worth keeping from the first temporary object on: a crash can leave it behind.
      this.#announced = true;
      this.#emitCheckpoint();
    }
    const done = part.start(this.#partObserver).then(
      (object) => {
        const stored: StoredPart = {
          index: part.index,
          name: part.name,
          generation: String(object.generation),
          crc32c: part.hasher.crcState!,
          size: Number(object.size),
        };
        this.#settled(part);
        this.#temps.set(part.name, stored.generation);
        this.#stored.set(part.index, stored);
        if (!this.#abort.signal.aborted) {
          this.#report('progress', () => this.#observer.progress({ bytesAccepted: this.#accepted, bytesCommitted: this.bytesCommitted }));
          this.#emitCheckpoint();
        }
        this.#notify();
        return stored;
      },
      (error: unknown) => {
        this.#settled(part);
        const failure = asUploadError(error);
        const existing = (failure.object as ObjectResource | undefined)?.generation;
        if (existing !== undefined) this.#temps.set(part.name, existing);
        this.#fail(failure);
        throw failure;
      },
    );
    done.catch(() => {}); // observed through #fail and #run
    this.#results.push(done);
  }

  #settled(part: PartUpload): void {
    if (part.closed) this.#inFlight -= 1;
    if (this.#parts.delete(part.index)) this.#hashedBySettled += part.window.bytesHashedOnWorker;
    if (this.#current === part) this.#current = undefined;
  }

  /** The source passes through a part stored before the resume: its bytes are hashed and checked, not held. */
  #skip(part: StoredPart, within: number, src: Uint8Array, at: number): number {
    const from = part.index * this.#options.partSize;
    const mismatch = (): number => {
      this.#fail(new SourceMismatchError({ kind: 'part-differs', index: part.index, from, to: from + part.size }));
      return src.length - at;
    };
    // A stored part shorter than partSize was the last: a source that goes on beyond it is another source.
    if (within >= part.size) return mismatch();
    const taken = Math.min(src.length - at, part.size - within);
    this.#skipCrc = continueCrc32c(within === 0 ? 0 : this.#skipCrc, src.subarray(at, at + taken));
    this.#accepted += taken;
    if (within + taken === part.size && this.#skipCrc !== part.crc32c) return mismatch();
    return taken;
  }

  #emitCheckpoint(): void {
    const parts = [...this.#stored.values()].sort((a, b) => a.index - b.index).map((part) => ({ ...part }));
    const { bucket, name, partPrefix, partSize } = this.#options;
    const checkpoint: ParallelCheckpoint = {
      version: 1,
      kind: 'parallel',
      uploadId: this.#uploadId,
      bucket,
      name,
      partPrefix,
      partSize,
      bytesCommitted: contiguousBytes(parts, partSize),
      parts,
    };
    this.#report('checkpoint', () => this.#observer.checkpoint(checkpoint));
  }

  /** Calls a listener; one that throws stops the upload (a bug in the caller's code, not a fault to retry). */
  #report(event: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#fail(new ListenerError(event, error));
    }
  }

  #fail(reason: GcsUploadError): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(reason);
    for (const part of this.#parts.values()) part.abort(new UploadAbortedError(reason));
    this.#small?.abort(reason);
    this.#notify();
  }

  #nextChange(): Promise<void> {
    this.#changed ??= new Promise((resolve) => {
      this.#wake = resolve;
    });
    return this.#changed;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    this.#changed = undefined;
    wake?.();
  }

  async #run(): Promise<ObjectResource> {
    const signal = this.#abort.signal;
    try {
      if (this.#options.parallelResume) await this.#resume();
      this.#resolveReady();
      while (!this.#ended) {
        signal.throwIfAborted();
        await this.#nextChange();
      }
      signal.throwIfAborted();
      if (this.#small) return await this.#small.start();
      const parts = await this.#allParts();
      signal.throwIfAborted();
      const object = await this.#compose(parts);
      // From here the object exists and holds the source: an abort now comes too late to undo it.
      this.#leftovers = await this.#deleteTemporaries();
      if (this.#leftovers.length > 0) this.#warnLeftovers();
      return object;
    } catch (error) {
      const failure = signal.aborted ? asUploadError(signal.reason) : asUploadError(error);
      this.#fail(failure);
      // Every part's upload has settled (its session cancelled, or its object known) before cleanup.
      await Promise.allSettled([...this.#results, ...(this.#small ? [this.#small.start()] : [])]);
      for (const part of this.#parts.values()) part.window.dispose();
      this.#leftovers = await this.#deleteTemporaries();
      failure.leftovers = [...this.#leftovers];
      throw failure.attachContext({
        bucket: this.#options.bucket,
        name: this.#options.name,
        bytesAccepted: this.#accepted,
        bytesCommitted: this.bytesCommitted,
        uploadUri: undefined,
        outcome: { kind: 'cancelled' },
      });
    } finally {
      this.#notify();
    }
  }

  /** Waits for every part; returns them in order, checked to cover the source exactly. */
  async #allParts(): Promise<ComposeInput[]> {
    const partSize = this.#options.partSize;
    const total = this.#accepted;
    let storedEnd = 0;
    for (const part of this.#stored.values()) storedEnd = Math.max(storedEnd, part.index * partSize + part.size);
    if (total < storedEnd) throw new SourceMismatchError({ kind: 'ended-early', supplied: total, holds: storedEnd });
    await Promise.all(this.#results);
    const parts: ComposeInput[] = [];
    for (let index = 0; index * partSize < total; index += 1) {
      const part = this.#stored.get(index);
      const expected = Math.min(partSize, total - index * partSize);
      if (part === undefined || part.size !== expected) {
        throw new SourceMismatchError({ kind: 'part-differs', index, from: index * partSize, to: index * partSize + expected });
      }
      parts.push(part);
    }
    return parts;
  }

  /** Composes the parts into the destination and checks its CRC32C and size against the parts'. */
  async #compose(parts: readonly ComposeInput[]): Promise<ObjectResource> {
    const { bucket, name, query, resource, parallel } = this.#options;
    const object = await composeInTiers(
      {
        api: this.#api,
        bucket,
        intermediateName: (tier, j) => `${this.#prefix}t${tier}-${j}`,
        created: (intermediate, generation) => this.#temps.set(intermediate, generation),
        concurrency: parallel,
        signal: this.#abort.signal,
      },
      parts,
      {
        bucket,
        name,
        destination: resource,
        preconditions: { ifGenerationMatch: query.ifGenerationMatch, ifMetagenerationMatch: query.ifMetagenerationMatch },
        kmsKeyName: query.kmsKeyName,
        predefinedAcl: query.predefinedAcl,
      },
    );
    const total = parts.reduce((sum, part) => sum + part.size, 0);
    const crc32c = crc32cToBase64(combineCrc32cs(parts));
    const mismatches: Mismatch[] = [];
    if (object.size !== String(total)) mismatches.push({ field: 'size', stored: object.size, expected: String(total) });
    if (object.crc32c !== crc32c) mismatches.push({ field: 'crc32c', stored: object.crc32c, expected: crc32c });
    if (mismatches.length === 0) return object;
    // The compose made this generation: withdraw it (only it, by its generation).
    const deleted = await this.#api.deleteObject({ bucket, name, generation: object.generation }).then(
      () => true,
      () => false,
    );
    throw new ChecksumMismatchError({ kind: 'stored', mismatches, deleted, generation: object.generation });
  }

  /** Deletes every temporary object that may exist; returns the names of those that could not be deleted. */
  async #deleteTemporaries(): Promise<string[]> {
    const entries = [...this.#temps];
    const failed: string[] = [];
    let cursor = 0;
    this.#firstDeleteFailure = undefined;
    const worker = async (): Promise<void> => {
      while (cursor < entries.length) {
        const [name, generation] = entries[cursor++]!;
        try {
          await this.#api.deleteObject({ bucket: this.#options.bucket, name, generation });
          this.#temps.delete(name);
        } catch (error) {
          this.#firstDeleteFailure ??= asUploadError(error);
          failed.push(name);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#options.parallel, entries.length) }, worker));
    return failed.sort();
  }

  #firstDeleteFailure: GcsUploadError | undefined;

  #warnLeftovers(): void {
    const leftovers = [...this.#leftovers];
    const where = `gs://${this.#options.bucket}/${this.#options.name}`;
    const warning: UploadWarning = {
      code: 'ERR_GCS_UPLOAD_LEFTOVERS',
      message:
        `${where} was composed, but ${leftovers.length} temporary object${leftovers.length === 1 ? '' : 's'} under ` +
        `gs://${this.#options.bucket}/${this.#prefix} could not be deleted: delete them, or run gcs-stream cleanup`,
      leftovers,
      cause: this.#firstDeleteFailure,
    };
    // The object exists: a listener's failure here cannot undo it, and must not turn the success into an error.
    try {
      this.#observer.warning(warning);
    } catch {
      // ignored on purpose: see above
    }
  }

  /** Finds what a checkpoint's upload left: the stored parts (checked against the source later) and intermediates. */
  async #resume(): Promise<void> {
    const { bucket, partSize, sourceOffset } = this.#options;
    for await (const page of this.#api.listObjects({ bucket, prefix: this.#prefix, signal: this.#abort.signal })) {
      for (const item of page.items) {
        const rest = item.name.slice(this.#prefix.length);
        const crc32c = item.crc32c === undefined ? undefined : crc32cFromBase64(item.crc32c);
        this.#temps.set(item.name, item.generation);
        if (!/^(0|[1-9]\d{0,14})$/.test(rest) || crc32c === undefined || item.size === 0 || item.size > partSize) continue;
        const stored: StoredPart = { index: Number(rest), name: item.name, generation: item.generation, crc32c, size: item.size };
        this.#stored.set(stored.index, stored);
        if (stored.index * partSize >= sourceOffset) this.#resumed.set(stored.index, stored);
      }
    }
    for (const [name] of this.#temps) {
      // A listed object that is no part to keep (an intermediate, or a part this stream will upload again) must go
      // first: a part is created with ifGenerationMatch 0.
      const index = /^\d+$/.test(name.slice(this.#prefix.length)) ? Number(name.slice(this.#prefix.length)) : undefined;
      if (index !== undefined && this.#stored.get(index)?.name === name) continue;
      if (index !== undefined) {
        await this.#api.deleteObject({ bucket, name, generation: this.#temps.get(name), signal: this.#abort.signal });
        this.#temps.delete(name);
      }
    }
    for (let index = 0; index * partSize < sourceOffset; index += 1) {
      if (!this.#stored.has(index)) {
        throw new InvalidArgumentError(
          `resume: part ${index} of the checkpoint no longer exists, and the source starts after it; resume with sourceStart 'beginning' so that it is uploaded again`,
        );
      }
    }
    this.#announced = true;
    this.#emitCheckpoint();
  }
}
