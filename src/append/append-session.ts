/**
 * One `BidiWriteObject` stream: the wire protocol and nothing else. It sends the first message (create or append
 * spec), then data, flush and finish messages; it reads responses (generation, write handle, persisted size, the
 * final resource) and turns the stream's end status into a typed error. While the client waits for an answer (the
 * first response, a persisted size, the final object, room to send), the server must say something at least every
 * `stallTimeoutMs`: a stream that goes silent is cancelled and fails with `RequestTimeoutError`, which the uploader
 * retries like UNAVAILABLE. Retries and reconciliation are the uploader's.
 */
import type * as Grpc from '@grpc/grpc-js';
import {
  GcsUploadError,
  GrpcStatusError,
  ObjectFinalizedError,
  RequestTimeoutError,
  SupersededError,
  UploadAbortedError,
} from '../core/errors.js';
import { bytesOf, int64Of, int64TextOf } from '../grpc/proto3.js';
import { decodeRpcStatus, type WriteRedirect } from '../grpc/status-details.js';
import { grpcCodeName, type WireObject, type WireWriteRequest, type WireWriteResponse } from '../grpc/wire-types.js';

/** The stream was redirected: reconnect with the routing token (and write handle); not a failure of the budget. */
export class WriteRedirectedError extends GcsUploadError {
  /** What the redirect carried. */
  readonly redirect: WriteRedirect;
  constructor(redirect: WriteRedirect) {
    super('ERR_GCS_UPLOAD_REDIRECTED', 'The write stream was redirected', { retryable: true });
    this.redirect = redirect;
  }
}

/** What the first response said. */
export interface OpenedObject {
  generation: string;
  /** Bytes the object holds (persisted). */
  persisted: number;
  /** The raw CRC32C of those bytes, when the server reported it with them. */
  persistedCrc32c: number | undefined;
  handle: Buffer | undefined;
}

type Call = Grpc.ClientDuplexStream<WireWriteRequest, WireWriteResponse>;

/** An open `BidiWriteObject` stream. */
export class AppendSession {
  readonly #call: Call;
  readonly #target: string;
  readonly #kind: 'create' | 'append';
  readonly #stallTimeoutMs: number;
  #stallTimer: NodeJS.Timeout | undefined;
  #ended = false;
  #failure: GcsUploadError | undefined;
  #opened = false;
  #persisted = -1;
  /** The CRC32C the server reported for the `#persisted` bytes, if it did. */
  #persistedCrc32c: number | undefined;
  #handle: Buffer | undefined;
  #final: WireObject | undefined;
  #generation: string | undefined;
  #waiters = new Set<() => void>();

  /**
   * Starts the stream `call` opened for `target` (`gs://b/o`) and sends `first`; `stallTimeoutMs` bounds the silence
   * of the server while an answer is awaited.
   */
  constructor(call: Call, target: string, first: WireWriteRequest, stallTimeoutMs: number) {
    this.#call = call;
    this.#target = target;
    this.#stallTimeoutMs = stallTimeoutMs;
    this.#kind = first.append_object_spec === undefined ? 'create' : 'append';
    call.on('data', (response: WireWriteResponse) => this.#onResponse(response));
    call.on('error', (error: Grpc.ServiceError) => this.#fail(this.#toError(error)));
    call.on('end', () => {
      if (this.#final === undefined)
        this.#fail(new GrpcStatusError(this.#what(), 'UNAVAILABLE', 'the server ended the stream before finishing the write'));
    });
    call.on('status', () => {
      this.#ended = true;
      this.#wake();
    });
    // Room to send again is an answer too: a server that reads is not stalled.
    call.on('drain', () => this.#watch(true));
    call.write(first);
  }

  /** The latest write handle the server gave. */
  get handle(): Buffer | undefined {
    return this.#handle;
  }

  /** Whether the server answered at least once (the first response arrived). */
  get answered(): boolean {
    return this.#opened;
  }

  /** Whether the stream takes an existing object over (`append_object_spec`) rather than creating one. */
  get appending(): boolean {
    return this.#kind === 'append';
  }

  /** The failure that ended the stream, if it ended. */
  get failure(): GcsUploadError | undefined {
    return this.#failure;
  }

  /** Resolves with the first response: the object's generation, persisted size and write handle. */
  opened(): Promise<OpenedObject> {
    return this.#until(() =>
      this.#opened
        ? { generation: this.#generation ?? '', persisted: this.#persisted, persistedCrc32c: this.#persistedCrc32c, handle: this.#handle }
        : undefined,
    );
  }

  /** Sends one message, waiting while gRPC's buffer is full (for at most `stallTimeoutMs` without room). */
  async send(request: WireWriteRequest): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#call.write(request)) return;
    let drained = false;
    const onDrain = (): void => {
      drained = true;
      this.#wake();
    };
    this.#call.once('drain', onDrain);
    try {
      await this.#until(() => (drained ? true : undefined));
    } finally {
      this.#call.off('drain', onDrain);
    }
  }

  /** Resolves once the server reports at least `target` bytes persisted, with what it reported. */
  persistedAtLeast(target: number): Promise<number> {
    return this.#until(() => (this.#persisted >= target ? this.#persisted : undefined));
  }

  /** Resolves with the finalized object resource. */
  finished(): Promise<WireObject> {
    return this.#until(() => this.#final);
  }

  /** Half-closes the stream (no finish_write: the object stays appendable) and waits for its last answer. */
  async close(): Promise<number> {
    this.#call.end();
    await this.#until(() => (this.#ended ? true : undefined)).catch(() => undefined);
    if (this.#failure !== undefined && !(this.#failure instanceof GrpcStatusError && this.#persisted >= 0)) throw this.#failure;
    return this.#persisted;
  }

  /** Abandons the stream. */
  cancel(): void {
    this.#failure ??= new UploadAbortedError();
    this.#call.cancel();
    this.#wake();
  }

  /**
   * Keeps the stall timer in step with the waiters: armed while someone waits for an answer, restarted by every
   * answer (`answered`), cleared when nobody waits. A stall cancels the stream, so that grpc-js gives up on it too.
   */
  #watch(answered: boolean): void {
    if (answered || this.#waiters.size === 0 || this.#failure !== undefined) {
      if (this.#stallTimer !== undefined) clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    }
    if (this.#waiters.size === 0 || this.#failure !== undefined || this.#stallTimer !== undefined) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#failure !== undefined) return;
      this.#failure = new RequestTimeoutError(this.#what(), this.#stallTimeoutMs);
      this.#call.cancel();
      this.#wake();
    }, this.#stallTimeoutMs);
  }

  #until<T>(ready: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const value = ready();
        if (value !== undefined) {
          this.#waiters.delete(check);
          this.#watch(false);
          resolve(value);
        } else if (this.#failure !== undefined) {
          this.#waiters.delete(check);
          this.#watch(false);
          reject(this.#failure);
        }
      };
      this.#waiters.add(check);
      check();
      if (this.#waiters.has(check)) this.#watch(false);
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #onResponse(response: WireWriteResponse): void {
    const handle = response.write_handle === undefined ? undefined : bytesOf(response.write_handle.handle);
    if (handle !== undefined && handle.length > 0) this.#handle = handle;
    // The CRC32C of the persisted bytes comes in `persisted_data_checksums`, beside either the persisted size or (a
    // takeover's first answer) the object resource, as Google's clients read it; the resource's own checksums are
    // those of a complete object.
    const persistedCrc32c = response.persisted_data_checksums?.crc32c;
    // `persisted_size` shares a oneof with `resource`: it has presence, and a 0 is on the wire.
    if (response.persisted_size !== undefined) this.#persistedTo(int64Of(response.persisted_size), persistedCrc32c);
    const resource = response.resource;
    if (resource !== undefined) {
      // proto3: an empty object's resource carries no `size` (and generation 0 would mean none was given).
      const generation = int64TextOf(resource.generation);
      if (generation !== '0') this.#generation ??= generation;
      if (resource.finalize_time !== undefined) this.#final = resource;
      else this.#persistedTo(int64Of(resource.size), persistedCrc32c);
    }
    this.#opened = true;
    this.#watch(true);
    this.#wake();
  }

  /** The server reported `size` bytes persisted, with their CRC32C if it gave one. */
  #persistedTo(size: number, crc32c: number | undefined): void {
    if (size < this.#persisted) return;
    if (size > this.#persisted) this.#persistedCrc32c = undefined;
    this.#persisted = size;
    if (crc32c !== undefined) this.#persistedCrc32c = crc32c >>> 0;
  }

  #fail(error: GcsUploadError): void {
    this.#failure ??= error;
    this.#wake();
  }

  #what(): string {
    return this.#kind === 'create' ? `Creating appendable object ${this.#target}` : `Appending to ${this.#target}`;
  }

  #toError(error: Grpc.ServiceError): GcsUploadError {
    if (this.#failure !== undefined) return this.#failure;
    const name = grpcCodeName(error.code);
    const detailsBin = error.metadata?.get('grpc-status-details-bin')[0];
    const status = Buffer.isBuffer(detailsBin) ? decodeRpcStatus(detailsBin) : undefined;
    if (name === 'ABORTED' && status?.redirect !== undefined) return new WriteRedirectedError(status.redirect);
    const message = error.details || status?.message || undefined;
    // Once the object exists, a precondition failure or an abort means another writer owns it now, or (GCS says so in
    // the message, the status carries no other sign) that it was finalized.
    const exists = this.#kind === 'append' || this.#opened;
    if (name === 'FAILED_PRECONDITION' && exists && /finali[sz]ed/i.test(message ?? ''))
      return new ObjectFinalizedError(this.#target, message);
    if ((name === 'FAILED_PRECONDITION' || name === 'ABORTED') && exists) {
      return new SupersededError(this.#target, message);
    }
    return new GrpcStatusError(this.#what(), name, message);
  }
}
