/**
 * The appendable write, end to end: bytes accepted from the writer wait in a replay buffer until the server reports
 * them persisted; they are sent over one `BidiWriteObject` stream at a time, in messages of at most 2 MiB with their
 * CRC32C. When a stream fails, a transient failure waits its backoff (the budget resets whenever the persisted size
 * grows), a redirect is followed at once, and the object is reopened with `append_object_spec` (generation, write
 * handle, routing token): the persisted size it reports may only grow and never pass what was sent (a takeover's
 * first answer may pass its checkpoint: those bytes are skipped from the source), the replay buffer drops what it
 * holds, and the rest is sent again.
 */
import type * as Grpc from '@grpc/grpc-js';
import { continueCrc32c, crc32cToBase64 } from '../core/checksum.js';
import {
  ChecksumMismatchError,
  CreateUnconfirmedError,
  GcsUploadError,
  GrpcStatusError,
  ProtocolError,
  SourceMismatchError,
  UploadAbortedError,
} from '../core/errors.js';
import { RetryBudget, type RetryEvent } from '../core/retry.js';
import type { AppendableCheckpoint, NormalizedAppendOptions } from './append-options.js';
import { AppendSession, WriteRedirectedError } from './append-session.js';
import { authorizeMetadata, createStorageClient, streamMetadata } from '../grpc/grpc-connection.js';
import {
  bucketResourceName,
  MAX_MESSAGE_CONTENT,
  type WireObject,
  type WireWriteRequest,
  type WireWriteResponse,
} from '../grpc/wire-types.js';
import { int64Of, int64TextOf } from '../grpc/proto3.js';

/** Unpersisted bytes beyond which a write waits for a flush: bounds the replay buffer. */
export const MAX_UNPERSISTED = 16 * 1024 * 1024;

/** Redirects followed in a row before giving up (a server that redirects forever). */
const MAX_REDIRECTS = 10;

/** What the uploader tells its stream. */
export interface AppendEvents {
  generation(generation: string): void;
  checkpoint(checkpoint: AppendableCheckpoint): void;
  progress(progress: { bytesAccepted: number; bytesCommitted: number }): void;
  retry(event: RetryEvent): void;
}

/** The appendable write of one object. */
export class AppendUploader {
  readonly #options: NormalizedAppendOptions;
  readonly #events: AppendEvents;
  readonly #budget: RetryBudget;
  readonly #abort = new AbortController();
  readonly #target: string;
  #client: Grpc.Client | undefined;
  #session: AppendSession | undefined;
  #generation: string | undefined;
  #handle: Buffer | undefined;
  #routingToken: string | undefined;
  /** Bytes the server reported persisted (object offsets throughout). */
  #persisted = 0;
  /** End of the bytes accepted from the writer. */
  #accepted: number;
  /** End of the bytes sent on the current stream. */
  #sent = 0;
  /** Highest offset ever sent, on any stream. */
  #sentMax = 0;
  /** Bytes `[#replayStart, #accepted)`, not yet known persisted. */
  #replay: Buffer[] = [];
  #replayStart: number;
  /** Raw CRC32C of the object's first `#accepted` bytes. */
  #crc: number;
  /** Raw CRC32C of the object's first `#replayStart` bytes (the persisted prefix, what checkpoints carry). */
  #replayCrc: number;
  /** Source position (object offset) of bytes still to be compared with the checkpoint (sourceStart 'beginning'). */
  #verifyEnd = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** A create's first answer was lost: the object may exist, and only the precondition keeps a retry from replacing it. */
  #createUnanswered = false;
  /** Whether 'generation' and the first checkpoint were emitted (a takeover starts from the caller's checkpoint). */
  #announced: boolean;
  /** A takeover whose first answer has not arrived yet (it may find the object longer than the checkpoint). */
  #takingOver: boolean;
  /**
   * A takeover found the object longer than its checkpoint: the source's bytes up to `bytes` are skipped, and must
   * end no earlier and hash (from the object's start) to `crc32c`, when the server reported it.
   */
  #heldAhead: { readonly from: number; readonly bytes: number; readonly crc32c: number | undefined } | undefined;

  constructor(options: NormalizedAppendOptions, events: AppendEvents) {
    this.#options = options;
    this.#events = events;
    this.#budget = new RetryBudget(options.retry);
    this.#target = `gs://${options.bucket}/${options.name}`;
    const resume = options.resume;
    this.#accepted = options.sourceOffset;
    this.#replayStart = options.sourceOffset;
    this.#crc = resume !== undefined && options.sourceOffset > 0 ? resume.crc32c : 0;
    this.#replayCrc = resume?.crc32c ?? 0;
    this.#announced = resume !== undefined;
    this.#takingOver = resume !== undefined;
    if (resume !== undefined) {
      this.#generation = resume.generation;
      this.#handle = resume.writeHandle === undefined ? undefined : Buffer.from(resume.writeHandle, 'base64');
      this.#persisted = resume.bytesCommitted;
      this.#replayStart = resume.bytesCommitted;
      this.#sentMax = resume.bytesCommitted;
      if (options.sourceOffset === 0) this.#verifyEnd = resume.bytesCommitted;
    }
  }

  get bytesAccepted(): number {
    return this.#accepted;
  }

  get bytesCommitted(): number {
    return this.#persisted;
  }

  /** Takes `chunk` (copied) and sends it; resolves once sent (or persisted, when too much is unpersisted). */
  write(chunk: Buffer): Promise<void> {
    return this.#serial(async () => {
      this.#take(chunk);
      await this.#withRetry(() => this.#sendPending());
      this.#events.progress({ bytesAccepted: this.#accepted, bytesCommitted: this.#persisted });
      if (this.#accepted - this.#persisted > MAX_UNPERSISTED) await this.#flushNow();
    });
  }

  /** Persists everything accepted; resolves with the persisted size the server reports. */
  flush(): Promise<number> {
    return this.#serial(() => this.#flushNow());
  }

  /** Finalizes (with the whole-object CRC32C) or, with `finalize: false`, persists and leaves the object appendable. */
  end(): Promise<WireObject | undefined> {
    return this.#serial(async () => {
      this.#checkVerified();
      if (!this.#options.finalize) {
        await this.#flushNow();
        const session = this.#session;
        this.#session = undefined;
        await session?.close().catch(() => undefined);
        this.#shutdown();
        return undefined;
      }
      const resource = await this.#withRetry(async () => {
        const session = await this.#sendPending();
        await session.send({ write_offset: String(this.#sent), finish_write: true, object_checksums: { crc32c: this.#crc } });
        return session.finished();
      });
      // proto3: an empty object's resource has no `size` on the wire (0); its CRC32C has presence, and is compared
      // only when given.
      const size = int64Of(resource.size);
      const crc = resource.checksums?.crc32c;
      if (size !== this.#accepted || (crc !== undefined && crc >>> 0 !== this.#crc)) {
        throw new ChecksumMismatchError({
          kind: 'finalized',
          mismatches: [
            ...(size !== this.#accepted ? [{ field: 'size' as const, stored: String(size), expected: String(this.#accepted) }] : []),
            ...(crc !== undefined && crc >>> 0 !== this.#crc
              ? [{ field: 'crc32c' as const, stored: crc32cToBase64(crc), expected: crc32cToBase64(this.#crc) }]
              : []),
          ],
          target: this.#target,
          generation: this.#generation ?? int64TextOf(resource.generation),
        });
      }
      this.#setPersisted(size);
      this.#shutdown();
      return resource;
    });
  }

  /** Stops at once: the stream is cancelled, pending operations fail with `UploadAbortedError`. */
  abort(reason?: unknown): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(new UploadAbortedError(reason));
    this.#session?.cancel();
    this.#shutdown();
  }

  /** Records where the write stood on `error`. */
  decorate(error: GcsUploadError): GcsUploadError {
    error.bytesAccepted ??= this.#accepted;
    error.bytesCommitted ??= this.#persisted;
    return error;
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#abort.signal.aborted) throw this.#abort.signal.reason as Error;
      return op();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #take(chunk: Buffer): void {
    const start = this.#accepted;
    const resume = this.#options.resume;
    if (this.#verifyEnd > start && resume !== undefined) {
      // The source restarts at the object's first byte: its first bytes must hash to the checkpoint's CRC32C.
      const prefix = continueCrc32c(this.#crc, chunk.subarray(0, this.#verifyEnd - start));
      if (start + chunk.length >= this.#verifyEnd) {
        if (prefix !== resume.crc32c >>> 0) throw new SourceMismatchError({ kind: 'prefix-differs', bytes: resume.bytesCommitted });
        this.#verifyEnd = 0;
      }
    }
    const ahead = this.#heldAhead;
    if (ahead !== undefined && start + chunk.length >= ahead.bytes) {
      this.#heldAhead = undefined;
      this.#checkHeldAhead(ahead, continueCrc32c(this.#crc, chunk.subarray(0, ahead.bytes - start)));
    }
    this.#crc = continueCrc32c(this.#crc, chunk);
    this.#accepted += chunk.length;
    // Bytes below the replay's start are already in the object (a source that restarts at its beginning).
    const fresh = chunk.subarray(Math.max(0, this.#replayStart - start));
    if (fresh.length > 0) this.#replay.push(Buffer.from(fresh));
  }

  #checkVerified(): void {
    const resume = this.#options.resume;
    if (this.#verifyEnd > 0 && resume !== undefined) {
      throw new SourceMismatchError({ kind: 'ended-early', supplied: this.#accepted, holds: resume.bytesCommitted });
    }
    if (this.#heldAhead !== undefined) {
      throw new SourceMismatchError({ kind: 'ended-early', supplied: this.#accepted, holds: this.#heldAhead.bytes });
    }
  }

  /** The source's first `ahead.bytes` bytes hash to `crc`: they must be those the object holds. */
  #checkHeldAhead(ahead: { from: number; bytes: number; crc32c: number | undefined }, crc: number): void {
    if (ahead.crc32c !== undefined && ahead.crc32c !== crc >>> 0) {
      throw new SourceMismatchError({ kind: 'object-differs', from: ahead.from, to: ahead.bytes });
    }
  }

  /** Raw CRC32C of the object's first `offset` bytes, for an offset within the replay buffer. */
  #crcAt(offset: number): number {
    let crc = this.#replayCrc;
    let position = this.#replayStart;
    for (const part of this.#replay) {
      if (position >= offset) break;
      const piece = part.subarray(0, Math.min(part.length, offset - position));
      crc = continueCrc32c(crc, piece);
      position += piece.length;
    }
    return crc;
  }

  async #flushNow(): Promise<number> {
    const persisted = await this.#withRetry(async () => {
      const session = await this.#sendPending();
      await session.send({ write_offset: String(this.#sent), flush: true, state_lookup: true });
      return session.persistedAtLeast(this.#accepted);
    });
    this.#setPersisted(persisted);
    this.#events.progress({ bytesAccepted: this.#accepted, bytesCommitted: this.#persisted });
    return persisted;
  }

  /** Sends every accepted byte not yet sent on the current stream (opening one if needed); returns the stream. */
  async #sendPending(): Promise<AppendSession> {
    const session = await this.#ensureSession();
    while (this.#sent < this.#accepted) {
      const content = this.#slice(this.#sent, MAX_MESSAGE_CONTENT);
      const offset = this.#sent;
      this.#sent += content.length;
      this.#sentMax = Math.max(this.#sentMax, this.#sent);
      await session.send({ write_offset: String(offset), checksummed_data: { content, crc32c: continueCrc32c(0, content) } });
    }
    return session;
  }

  /** Up to `max` replay bytes from `offset`, as one buffer. */
  #slice(offset: number, max: number): Buffer {
    const parts: Buffer[] = [];
    let position = this.#replayStart;
    let length = 0;
    for (const part of this.#replay) {
      const end = position + part.length;
      if (end > offset) {
        const piece = part.subarray(Math.max(0, offset - position), Math.min(part.length, offset + max - position));
        parts.push(piece);
        length += piece.length;
        if (length >= max) break;
      }
      position = end;
    }
    return parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
  }

  /** The server holds `persisted` bytes: release them from the replay buffer, reset the budget if it grew. */
  #setPersisted(persisted: number): void {
    if (persisted < this.#persisted) throw new ProtocolError({ kind: 'offset-backwards', reported: persisted, committed: this.#persisted });
    if (persisted > Math.max(this.#sentMax, this.#accepted))
      throw new ProtocolError({ kind: 'offset-beyond-sent', reported: persisted, sent: this.#sentMax });
    const grew = persisted > this.#persisted;
    this.#persisted = persisted;
    let drop = persisted - this.#replayStart;
    while (drop > 0 && this.#replay.length > 0) {
      const head = this.#replay[0]!;
      const dropped = head.subarray(0, Math.min(drop, head.length));
      this.#replayCrc = continueCrc32c(this.#replayCrc, dropped);
      this.#replayStart += dropped.length;
      drop -= dropped.length;
      if (dropped.length === head.length) this.#replay.shift();
      else this.#replay[0] = head.subarray(dropped.length);
    }
    if (grew) {
      this.#budget.progressed();
      if (this.#generation !== undefined) this.#events.checkpoint(this.#checkpoint());
    }
  }

  #checkpoint(): AppendableCheckpoint {
    const checkpoint: AppendableCheckpoint = {
      version: 1,
      kind: 'appendable',
      bucket: this.#options.bucket,
      name: this.#options.name,
      generation: this.#generation ?? '',
      // The persisted prefix whose CRC32C is known: all of it, except after a takeover that found more than its
      // checkpoint, until the source has supplied those bytes.
      bytesCommitted: this.#replayStart,
      crc32c: this.#replayCrc,
    };
    if (this.#handle !== undefined) checkpoint.writeHandle = this.#handle.toString('base64');
    return checkpoint;
  }

  /**
   * An open stream: the current one, or a new one (create, or append to the known generation). A current stream that
   * failed since the last operation (its failure arrived between two writes) throws that failure, so that the retry
   * loop decides what follows it: a redirect's routing token, a backoff, or the end of the write.
   */
  async #ensureSession(): Promise<AppendSession> {
    const current = this.#session;
    if (current?.failure !== undefined) throw current.failure;
    if (current !== undefined) return current;
    this.#client ??= createStorageClient(this.#options);
    const client = this.#client;
    const metadata = streamMetadata(this.#options, this.#options.bucket, this.#routingToken);
    // Credentials before the channel: a failure to obtain them sends nothing anywhere.
    if (this.#options.authClient !== undefined || !this.#options.insecure) {
      await authorizeMetadata(
        this.#options,
        metadata,
        this.#generation === undefined ? `Creating appendable object ${this.#target}` : `Appending to ${this.#target}`,
      );
    }
    const first: WireWriteRequest =
      this.#generation === undefined
        ? {
            write_object_spec: {
              resource: {
                bucket: bucketResourceName(this.#options.bucket),
                name: this.#options.name,
                ...(this.#options.contentType === undefined ? {} : { content_type: this.#options.contentType }),
                ...(this.#options.metadata === undefined ? {} : { metadata: { ...this.#options.metadata } }),
              },
              appendable: true,
              ...(this.#options.ifGenerationMatch === undefined ? {} : { if_generation_match: this.#options.ifGenerationMatch }),
            },
            write_offset: '0',
          }
        : {
            append_object_spec: {
              bucket: bucketResourceName(this.#options.bucket),
              object: this.#options.name,
              generation: this.#generation,
              ...(this.#handle === undefined ? {} : { write_handle: { handle: this.#handle } }),
              ...(this.#routingToken === undefined ? {} : { routing_token: this.#routingToken }),
            },
            write_offset: String(this.#persisted),
            state_lookup: true,
          };
    const call = (
      client as unknown as { BidiWriteObject(metadata: Grpc.Metadata): Grpc.ClientDuplexStream<WireWriteRequest, WireWriteResponse> }
    ).BidiWriteObject(metadata);
    const session = new AppendSession(call, this.#target, first, this.#options.retry.stallTimeoutMs);
    this.#session = session;
    const opened = await session.opened();
    this.#generation ??= opened.generation;
    this.#handle = opened.handle ?? this.#handle;
    // Once per object, on the first stream that answered: a create's, or the reopen after a redirected create (whose
    // generation came with the redirect). An empty object already exists: a checkpoint now lets another process take
    // it over from the start.
    if (!this.#announced) {
      this.#announced = true;
      this.#events.generation(this.#generation);
      this.#events.checkpoint(this.#checkpoint());
    }
    const resume = this.#options.resume;
    if (resume !== undefined && opened.persisted < resume.bytesCommitted) {
      throw new ProtocolError({ kind: 'below-checkpoint', holds: opened.persisted, recorded: resume.bytesCommitted });
    }
    // A takeover may find more than its checkpoint: the previous writer persisted bytes after the last checkpoint it
    // stored (it died before storing the next). They are the source's next bytes: they count as sent and are skipped
    // as the source supplies them, which must supply all of them, and, when the server gave their CRC32C, the same
    // bytes (else SourceMismatchError, before anything is appended); the whole-object CRC32C checks them again at
    // finalization.
    if (this.#takingOver) {
      this.#takingOver = false;
      const from = this.#replayStart;
      if (opened.persisted > from) {
        const ahead = { from, bytes: opened.persisted, crc32c: opened.persistedCrc32c };
        if (this.#accepted >= ahead.bytes) this.#checkHeldAhead(ahead, this.#crcAt(ahead.bytes));
        else this.#heldAhead = ahead;
      }
      this.#sentMax = Math.max(this.#sentMax, opened.persisted);
    }
    this.#setPersisted(opened.persisted);
    this.#sent = opened.persisted;
    return session;
  }

  /** Runs `op`; after a failure follows a redirect or waits the backoff, then runs it again on a fresh stream. */
  async #withRetry<T>(op: () => Promise<T>): Promise<T> {
    let redirects = 0;
    for (;;) {
      try {
        return await op();
      } catch (thrown) {
        const error = thrown instanceof GcsUploadError ? thrown : new UploadAbortedError(thrown);
        const failed = this.#session;
        failed?.cancel();
        this.#session = undefined;
        // A takeover whose first answer was lost may have rotated the write handle: reopen by generation alone. The
        // persisted size the next stream reports (never past what this writer sent) still catches another writer.
        if (failed?.appending === true && !failed.answered) this.#handle = undefined;
        if (this.#abort.signal.aborted) throw this.#abort.signal.reason as Error;
        if (error instanceof WriteRedirectedError && redirects < MAX_REDIRECTS) {
          redirects += 1;
          const { routingToken, writeHandle, generation } = error.redirect;
          if (routingToken !== undefined) this.#routingToken = routingToken;
          if (writeHandle !== undefined) this.#handle = writeHandle;
          if (generation !== undefined && this.#generation === undefined) this.#generation = generation;
          continue;
        }
        if (failed !== undefined && !failed.appending && !failed.answered && this.#generation === undefined) this.#checkCreate(error);
        if (!error.retryable || error instanceof ProtocolError) throw error;
        await this.#budget.failed(error, this.#abort.signal, (event) => this.#events.retry(event));
      }
    }
  }

  /**
   * A create stream failed before its first answer: it may have created the object, whose generation is unknown, so
   * it can be neither taken over nor looked up. Such a generation holds no data (the first message carries none).
   * Without a precondition the create is retried: a new generation replaces it, as any write without a
   * precondition replaces the live object, and nothing is lost or doubled. With one, the retry carries it, so a
   * second create is refused if the first one succeeded: the stream then stops and says an unfinalized appendable
   * object may exist (CreateUnconfirmedError).
   */
  #checkCreate(error: GcsUploadError): void {
    const { bucket, name, ifGenerationMatch } = this.#options;
    if (this.#createUnanswered && error instanceof GrpcStatusError && error.grpcStatus === 'FAILED_PRECONDITION') {
      throw new CreateUnconfirmedError(bucket, name, { reason: 'precondition-failed', ifGenerationMatch: ifGenerationMatch ?? '' }, error);
    }
    if (!error.retryable || ifGenerationMatch === undefined) return;
    this.#createUnanswered = true;
  }

  #shutdown(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
