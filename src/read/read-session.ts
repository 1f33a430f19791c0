/**
 * One `BidiReadObject` stream: the wire protocol and nothing else. It sends the first message (the object spec, and
 * ranges when given) and later ranges, queues the server's responses for the reader in order, and turns the stream's
 * end into a typed error. While the reader waits for a response, the server must say something at least every
 * `stallTimeoutMs`: a silent stream is cancelled and fails with `RequestTimeoutError` (retried like UNAVAILABLE).
 * Which ranges to ask for, retries and resumption are the reader's.
 */
import type * as Grpc from '@grpc/grpc-js';
import { GcsUploadError, GrpcStatusError, RequestTimeoutError, UploadAbortedError } from '../core/errors.js';
import type { WireReadRequest, WireReadResponse } from '../grpc/read-wire-types.js';
import { decodeRpcStatus, type ReadRedirect } from '../grpc/status-details.js';
import { grpcCodeName } from '../grpc/wire-types.js';

/** The read stream was redirected: reopen with the routing token (and read handle); not a failure of the budget. */
export class ReadRedirectedError extends GcsUploadError {
  /** What the redirect carried. */
  readonly redirect: ReadRedirect;
  constructor(redirect: ReadRedirect) {
    super('ERR_GCS_READ_REDIRECTED', 'The read stream was redirected', { retryable: true });
    this.redirect = redirect;
  }
}

type Call = Grpc.ClientDuplexStream<WireReadRequest, WireReadResponse>;

/** An open `BidiReadObject` stream. */
export class ReadSession {
  readonly #call: Call;
  readonly #what: string;
  readonly #stallTimeoutMs: number;
  readonly #responses: WireReadResponse[] = [];
  #failure: GcsUploadError | undefined;
  #answered = false;
  #waiter: (() => void) | undefined;
  #stallTimer: NodeJS.Timeout | undefined;

  /** Starts the stream `call` opened (`what` names it in errors) and sends `first`. */
  constructor(call: Call, what: string, first: WireReadRequest, stallTimeoutMs: number) {
    this.#call = call;
    this.#what = what;
    this.#stallTimeoutMs = stallTimeoutMs;
    call.on('data', (response: WireReadResponse) => {
      this.#answered = true;
      this.#responses.push(response);
      this.#wake();
    });
    call.on('error', (error: Grpc.ServiceError) => this.#fail(this.#toError(error)));
    call.on('end', () => this.#fail(new GrpcStatusError(what, 'UNAVAILABLE', 'the server ended the read stream')));
    call.write(first);
  }

  /** Whether the server answered at least once. */
  get answered(): boolean {
    return this.#answered;
  }

  /** The failure that ended the stream, if it ended. */
  get failure(): GcsUploadError | undefined {
    return this.#failure;
  }

  /** Asks for more (ranges on the open stream). */
  send(request: WireReadRequest): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#call.write(request);
  }

  /** The next response, in order; rejects with the stream's failure once none is left. */
  async next(): Promise<WireReadResponse> {
    for (;;) {
      const response = this.#responses.shift();
      if (response !== undefined) return response;
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        this.#stallTimer = setTimeout(() => {
          this.#fail(new RequestTimeoutError(this.#what, this.#stallTimeoutMs));
          this.#call.cancel();
        }, this.#stallTimeoutMs);
      });
    }
  }

  /** Abandons the stream. */
  cancel(): void {
    this.#fail(new UploadAbortedError());
    this.#call.cancel();
  }

  #wake(): void {
    if (this.#stallTimer !== undefined) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  #fail(error: GcsUploadError): void {
    this.#failure ??= error;
    this.#wake();
  }

  #toError(error: Grpc.ServiceError): GcsUploadError {
    if (this.#failure !== undefined) return this.#failure;
    const name = grpcCodeName(error.code);
    const detailsBin = error.metadata?.get('grpc-status-details-bin')[0];
    const status = Buffer.isBuffer(detailsBin) ? decodeRpcStatus(detailsBin) : undefined;
    if (name === 'ABORTED' && status?.readRedirect !== undefined) return new ReadRedirectedError(status.readRedirect);
    return new GrpcStatusError(this.#what, name, error.details || status?.message || undefined);
  }
}
