/**
 * `createGcsReadStream()`: a Readable of an object's bytes over storage v2 `BidiReadObject`, optionally following an
 * unfinalized appendable object as it grows.
 *
 * The reader asks for one range at a time, of at most {@link READ_RANGE_BYTES}, and only while the consumer wants
 * more (Node's `_read`), so what it holds is bounded whatever the object's size and the consumer's pace. Each
 * message's CRC32C is checked before its bytes are delivered; a whole finalized object read from byte 0 is checked
 * against the object's CRC32C at the end. A failed stream is reopened (with the read handle and a redirect's routing
 * token) at the first byte not yet delivered, under the library's retry policy.
 *
 * Following: once caught up, it waits `pollMs` and asks the open stream for the bytes from the current offset to the
 * end (never from beyond the size the server reported: that is OUT_OF_RANGE and ends the stream on GCS). When that
 * finds nothing, the next look opens a fresh stream without the read handle, whose first response carries the
 * object's metadata: its size (which a server serving each stream as a snapshot shows only there), whether it is
 * finalized, and (NOT_FOUND) whether it is gone. The JSON API's size of an unfinalized object is never consulted.
 */
import { Readable } from 'node:stream';
import type * as Grpc from '@grpc/grpc-js';
import { continueCrc32c, crc32cToBase64 } from '../core/checksum.js';
import {
  ChecksumMismatchError,
  GcsUploadError,
  GrpcStatusError,
  ObjectGoneError,
  ObjectNotFoundError,
  ProtocolError,
  UploadAbortedError,
} from '../core/errors.js';
import { RetryBudget, sleep, type RetryEvent } from '../core/retry.js';
import { authorizeMetadata, createStorageClient, streamMetadata } from '../grpc/grpc-connection.js';
import type { WireReadObjectSpec, WireReadRange, WireReadRequest, WireReadResponse } from '../grpc/read-wire-types.js';
import { bucketResourceName, type WireObject } from '../grpc/wire-types.js';
import { normalizeReadOptions, type GcsReadStreamOptions, type NormalizedReadOptions } from './read-options.js';
import { ReadRedirectedError, ReadSession } from './read-session.js';

/** Most bytes one range asks for: with the stream's buffer, what a reader holds at most. */
export const READ_RANGE_BYTES = 4 * 1024 * 1024;

/** The readable's buffer (bytes): a new range is asked for only while less than this waits for the consumer. */
export const READ_HIGH_WATER_MARK = 2 * 1024 * 1024;

/** Redirects, or reopens of streams that had served, in a row before they count against the retry budget. */
const MAX_QUICK_REOPENS = 10;

/** Events of a {@link GcsReadable}, besides those of a Readable. */
export interface GcsReadableEvents {
  /** A failed stream will be reopened after `delayMs`. */
  retry: (event: RetryEvent) => void;
}

/** A Readable of Buffers: one object's bytes, from `start`; see {@link createGcsReadStream}. */
export class GcsReadable extends Readable {
  readonly #options: NormalizedReadOptions;
  readonly #target: string;
  readonly #budget: RetryBudget;
  readonly #abort = new AbortController();
  #client: Grpc.Client | undefined;
  #session: ReadSession | undefined;
  #handle: Buffer | undefined;
  #routingToken: string | undefined;
  #generation: string | undefined;
  /** Object offset of the next byte to deliver. */
  #offset: number;
  /** The object's size as the server last reported it (or as far as bytes arrived); -1 before the first answer. */
  #size = -1;
  #finalized = false;
  /** The object's CRC32C, when the server gave it (a finalized object). */
  #objectCrc32c: number | undefined;
  /** Raw CRC32C of the bytes delivered, when reading from byte 0. */
  #crc = 0;
  #bytesRead = 0;
  #readId = 0;
  /** Whether a stream answered with the object's metadata at least once (NOT_FOUND before that: it never existed). */
  #opened = false;
  /** The next step opens a fresh stream for the object's metadata. */
  #needMetadata = true;
  /** The wait before the next poll is over (a poll that failed and is retried does not wait again). */
  #pollDue = false;
  #quickReopens = 0;
  #running = false;
  #wanted = false;
  #ended = false;

  /** Use {@link createGcsReadStream}. */
  constructor(options: NormalizedReadOptions) {
    super({ highWaterMark: READ_HIGH_WATER_MARK });
    this.#options = options;
    this.#target = `gs://${options.bucket}/${options.name}`;
    this.#budget = new RetryBudget(options.retry);
    this.#generation = options.generation;
    this.#offset = options.start;
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => void this.destroy(new UploadAbortedError(signal.reason));
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
      this.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }

  /** The generation read: the one given, else the live one once the stream opened ('' before that). */
  get generation(): string {
    return this.#generation ?? '';
  }

  /** Bytes delivered by this stream (not counting `start`). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Whether the object was seen finalized (always, for an ordinary object, once the stream opened). */
  get finalized(): boolean {
    return this.#finalized;
  }

  override _read(): void {
    this.#wanted = true;
    if (!this.#running) void this.#run();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#abort.abort(error ?? new UploadAbortedError());
    this.#closeSession();
    this.#client?.close();
    this.#client = undefined;
    callback(error);
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#wanted && !this.#ended && !this.destroyed) {
        if (await this.#withRetry(() => this.#step())) {
          this.#ended = true;
          this.#closeSession();
          this.#client?.close();
          this.#client = undefined;
          this.push(null);
        }
      }
    } catch (error) {
      if (!this.destroyed) this.destroy(error instanceof Error ? error : new UploadAbortedError(error));
    } finally {
      this.#running = false;
    }
  }

  /** One step of the read; true when every byte was delivered. */
  async #step(): Promise<boolean> {
    if (this.#needMetadata) {
      await this.#refresh();
      return false;
    }
    if (this.#offset < this.#size) {
      await this.#readRange(Math.min(READ_RANGE_BYTES, this.#size - this.#offset));
      return false;
    }
    if (this.#finalized || !this.#options.follow) {
      this.#checkWhole();
      return true;
    }
    if (!this.#pollDue) {
      await sleep(this.#options.pollMs, this.#abort.signal);
      this.#pollDue = true;
    }
    if (this.#offset > this.#size) {
      // A follower that starts beyond the bytes there are waits for the object to reach them.
      this.#pollDue = false;
      this.#needMetadata = true;
      return false;
    }
    // From the current offset to the end, capped so that a burst of growth is read a range at a time.
    const got = await this.#readRange(READ_RANGE_BYTES);
    // A full range may have more behind it: ask again at once. Nothing new on this stream: the next look is a fresh
    // stream's metadata (growth a snapshot server shows only there, finalization, deletion).
    this.#pollDue = got === READ_RANGE_BYTES;
    if (got === 0) this.#needMetadata = true;
    return false;
  }

  /** Opens a fresh stream (no read handle: GCS sends metadata only then) and takes the object's metadata from it. */
  async #refresh(): Promise<void> {
    this.#closeSession();
    const session = await this.#openSession(false, []);
    for (;;) {
      const response = await session.next();
      this.#takeHandle(response);
      if (response.metadata !== undefined) {
        this.#takeMetadata(response.metadata);
        break;
      }
    }
    this.#needMetadata = false;
  }

  /** Asks for up to `length` bytes from the current offset and delivers them; returns how many arrived. */
  async #readRange(length: number): Promise<number> {
    this.#readId += 1;
    const id = String(this.#readId);
    const range: WireReadRange = { read_offset: String(this.#offset), read_length: String(length), read_id: id };
    let session = this.#session;
    if (session === undefined) session = await this.#openSession(this.#handle !== undefined, [range]);
    else session.send({ read_ranges: [range] });
    let delivered = 0;
    for (;;) {
      const response = await session.next();
      this.#takeHandle(response);
      if (response.metadata !== undefined) this.#takeMetadata(response.metadata);
      for (const data of response.object_data_ranges ?? []) {
        // Absent read_id means 0, which this reader never uses: such data answers no range of this stream.
        if ((data.read_range?.read_id ?? '0') !== id) continue;
        const content = data.checksummed_data?.content;
        if (content !== undefined && content.length > 0) {
          const at = Number(data.read_range?.read_offset ?? '0');
          if (at !== this.#offset) throw new ProtocolError({ kind: 'read-offset', expected: this.#offset, got: at });
          const expected = data.checksummed_data?.crc32c;
          if (expected !== undefined) {
            const actual = continueCrc32c(0, content);
            if (actual !== expected >>> 0) {
              throw new ChecksumMismatchError({
                kind: 'read-message',
                target: this.#target,
                offset: at,
                expected: crc32cToBase64(expected),
                actual: crc32cToBase64(actual),
              });
            }
          }
          this.#deliver(content);
          delivered += content.length;
        }
        if (data.range_end === true) return delivered;
      }
    }
  }

  #deliver(content: Buffer): void {
    this.#offset += content.length;
    this.#bytesRead += content.length;
    if (this.#options.start === 0) this.#crc = continueCrc32c(this.#crc, content);
    // Bytes arrived up to here: the object holds at least as many.
    this.#size = Math.max(this.#size, this.#offset);
    this.#quickReopens = 0;
    this.#budget.progressed();
    if (!this.push(content)) this.#wanted = false;
  }

  /** A finalized object read whole from byte 0 must hash to the object's CRC32C. */
  #checkWhole(): void {
    if (this.#options.start !== 0 || !this.#finalized || this.#objectCrc32c === undefined || this.#offset !== this.#size) return;
    if (this.#crc >>> 0 !== this.#objectCrc32c >>> 0) {
      throw new ChecksumMismatchError({
        kind: 'read-object',
        target: this.#target,
        bytes: this.#bytesRead,
        expected: crc32cToBase64(this.#objectCrc32c),
        actual: crc32cToBase64(this.#crc),
      });
    }
  }

  #takeHandle(response: WireReadResponse): void {
    const handle = response.read_handle?.handle;
    if (handle !== undefined && handle.length > 0) this.#handle = handle;
  }

  /** proto3 semantics: an absent size is 0, an absent `finalize_time` means unfinalized. */
  #takeMetadata(metadata: WireObject): void {
    this.#generation ??= metadata.generation;
    this.#opened = true;
    const size = Number(metadata.size ?? '0');
    if (size < this.#size) throw new ProtocolError({ kind: 'read-shrank', size, delivered: this.#size });
    this.#size = size;
    this.#finalized = metadata.finalize_time !== undefined;
    const crc = metadata.checksums?.crc32c;
    this.#objectCrc32c = this.#finalized && crc !== undefined ? crc >>> 0 : undefined;
  }

  async #openSession(withHandle: boolean, ranges: WireReadRange[]): Promise<ReadSession> {
    const options = this.#options;
    this.#client ??= createStorageClient(options);
    const client = this.#client;
    const metadata = streamMetadata(options, options.bucket, this.#routingToken);
    if (options.authClient !== undefined || !options.insecure) {
      await authorizeMetadata(options, metadata, `Reading gs://${options.bucket}/${options.name}`);
    }
    const spec: WireReadObjectSpec = { bucket: bucketResourceName(options.bucket), object: options.name };
    if (this.#generation !== undefined) spec.generation = this.#generation;
    if (withHandle && this.#handle !== undefined) spec.read_handle = { handle: this.#handle };
    if (this.#routingToken !== undefined) spec.routing_token = this.#routingToken;
    const first: WireReadRequest = ranges.length > 0 ? { read_object_spec: spec, read_ranges: ranges } : { read_object_spec: spec };
    const call = (
      client as unknown as { BidiReadObject(metadata: Grpc.Metadata): Grpc.ClientDuplexStream<WireReadRequest, WireReadResponse> }
    ).BidiReadObject(metadata);
    const session = new ReadSession(call, `Reading ${this.#target}`, first, options.retry.stallTimeoutMs);
    this.#session = session;
    return session;
  }

  #closeSession(): void {
    this.#session?.cancel();
    this.#session = undefined;
  }

  /** Runs `op`; after a failure follows a redirect, reopens a cut stream, or waits the backoff, and runs it again. */
  async #withRetry<T>(op: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await op();
      } catch (thrown) {
        let error = thrown instanceof GcsUploadError ? thrown : new UploadAbortedError(thrown);
        const failed = this.#session;
        this.#closeSession();
        if (this.#abort.signal.aborted) throw this.#abort.signal.reason as Error;
        if (error instanceof GrpcStatusError && error.grpcStatus === 'NOT_FOUND') error = await this.#whyNotFound(error);
        if (error instanceof ReadRedirectedError && this.#quickReopens < MAX_QUICK_REOPENS) {
          this.#quickReopens += 1;
          const { routingToken, readHandle } = error.redirect;
          if (routingToken !== undefined) this.#routingToken = routingToken;
          if (readHandle !== undefined && readHandle.length > 0) this.#handle = readHandle;
          continue;
        }
        if (error instanceof ObjectGoneError || error instanceof ObjectNotFoundError || error instanceof ProtocolError) throw error;
        // A stream that served and was then cut (servers cut read streams routinely, GCS's conformance server every
        // 10 s) is reopened at once; a corrupted message is not such a cut.
        if (
          failed?.answered === true &&
          error.retryable &&
          !(error instanceof ChecksumMismatchError) &&
          this.#quickReopens < MAX_QUICK_REOPENS
        ) {
          this.#quickReopens += 1;
          continue;
        }
        await this.#budget.failed(error, this.#abort.signal, (event) => this.emit('retry', event));
      }
    }
  }

  /**
   * NOT_FOUND: the object never existed (before the first metadata), or the generation read is gone; a reader that
   * took the live generation at open tells whether another generation replaced it.
   */
  async #whyNotFound(error: GrpcStatusError): Promise<GcsUploadError> {
    const { bucket, name } = this.#options;
    if (!this.#opened) return new ObjectNotFoundError(bucket, name, this.#options.generation);
    const generation = this.#generation ?? '';
    const gone = { bytesRead: this.#bytesRead, generation };
    if (this.#options.generation !== undefined) return new ObjectGoneError(this.#target, { ...gone, reason: 'deleted' });
    const pinned = this.#generation;
    this.#generation = undefined;
    try {
      const session = await this.#openSession(false, []);
      for (;;) {
        const response = await session.next();
        if (response.metadata === undefined) continue;
        const live = response.metadata.generation;
        if (live === generation) return error;
        return new ObjectGoneError(this.#target, { ...gone, reason: 'replaced', liveGeneration: live });
      }
    } catch (probe) {
      if (probe instanceof GrpcStatusError && probe.grpcStatus === 'NOT_FOUND')
        return new ObjectGoneError(this.#target, { ...gone, reason: 'deleted' });
      return probe instanceof GcsUploadError ? probe : new UploadAbortedError(probe);
    } finally {
      this.#generation = pinned;
      this.#closeSession();
    }
  }
}

/**
 * A Readable of one object's bytes over storage v2 `BidiReadObject`, from `start`; with `follow`, it keeps reading
 * an unfinalized appendable object as it grows and ends once the object is finalized and every byte was delivered.
 * Errors: `ObjectNotFoundError` (missing at open), `ObjectGoneError` (deleted or replaced while read),
 * `ChecksumMismatchError`, `RetryExhaustedError`, `GrpcStatusError`, `UploadAbortedError` (`signal`); see the README.
 * Throws `InvalidArgumentError` on invalid options.
 */
export function createGcsReadStream(options: GcsReadStreamOptions): GcsReadable {
  return new GcsReadable(normalizeReadOptions(options));
}
