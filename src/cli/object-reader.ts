/**
 * The reading side of `gcs-stream cat`: object metadata and byte ranges through the JSON API, with the library's
 * retry policy (retry.ts: transient statuses and network failures, Retry-After, backoff with jitter, a budget of
 * attempts that resets on progress). The generation seen first is pinned and every media read asks for the bytes
 * from the first one not yet printed, so a read broken part-way resumes exactly where the output stopped.
 */
import { clientFor, getHeader, type AuthorizedClient, type HttpRequest, type HttpResponse } from '../core/auth.js';
import { GcsUploadError, HttpStatusError, RetryExhaustedError } from '../core/errors.js';
import { isEmulatorEndpoint } from '../core/options.js';
import { answerOf, classifyFailure, serverMessage } from '../core/responses.js';
import { DEFAULT_RETRY, isTransientStatus, parseRetryAfterMs, RetryBudget, type RetryEvent, type RetrySettings } from '../core/retry.js';
import type { GsLocation } from './gs-url.js';
import { ObjectReadError, type ObjectReadFailure } from './object-read-error.js';

/** What `cat` reads from an object resource. */
export interface ObjectState {
  size: number;
  generation: string;
  finalized: boolean;
}

/** Bytes per media request: below the transport's cap on a response held in memory, so memory stays bounded. */
export const RANGE_BYTES = 2 * 1024 * 1024;

/** How an {@link ObjectReader} runs. */
export interface ReaderOptions {
  /** Aborts whatever is going on. */
  signal: AbortSignal;
  /** Told of every retry before its backoff. */
  onRetry?: (event: RetryEvent) => void;
  /** The retry policy; the library's default (`shouldRetry` is not consulted). */
  retry?: Readonly<RetrySettings>;
}

/** Reads one object for `cat`; counts the bytes printed, which is where the next media read starts. */
export class ObjectReader {
  readonly #client: AuthorizedClient;
  readonly #url: string;
  readonly #target: string;
  readonly #headers: Record<string, string>;
  readonly #signal: AbortSignal;
  readonly #retry: Readonly<RetrySettings>;
  readonly #budget: RetryBudget;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  #generation: string | undefined;
  #printed = 0;

  /** A reader of `location` at `endpoint` (resolved from `flags.endpoint`). */
  constructor(
    endpoint: string,
    location: GsLocation,
    flags: { endpoint?: string | undefined; userProject?: string | undefined },
    options: ReaderOptions,
  ) {
    this.#client = clientFor({ authClient: undefined, isEmulator: isEmulatorEndpoint(flags.endpoint, endpoint) });
    this.#url = `${endpoint}/storage/v1/b/${encodeURIComponent(location.bucket)}/o/${encodeURIComponent(location.name)}`;
    this.#target = `gs://${location.bucket}/${location.name}`;
    this.#headers = flags.userProject === undefined ? {} : { 'x-goog-user-project': flags.userProject };
    this.#signal = options.signal;
    this.#onRetry = options.onRetry;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#budget = new RetryBudget({ ...this.#retry, shouldRetry: undefined });
  }

  /** Bytes printed so far: the offset the next read starts at. */
  get printed(): number {
    return this.#printed;
  }

  /** `count` more bytes were printed: the next read starts after them, and the retry budget starts afresh. */
  advance(count: number): void {
    this.#printed += count;
    if (count > 0) this.#budget.progressed();
  }

  /** The object's size and state; pins its generation the first time. */
  async state(): Promise<ObjectState> {
    const response = await this.#retried(`reading the metadata of ${this.#target}`, this.#objectUrl(this.#generation), {}, 'text');
    if (response.status === 404) throw this.#generation === undefined ? this.#fail({ kind: 'not-found' }) : await this.#gone();
    this.#expect(response, 200);
    const resource = parseResource(response.data);
    if (resource === undefined) throw this.#fail({ kind: 'unreadable-resource' }, response.status);
    this.#generation ??= resource.generation;
    // An answered poll ends a streak of failures: a followed object that is idle for hours must not give up on
    // failures spread over those hours.
    this.#budget.progressed();
    return resource;
  }

  /** Bytes from the first one not printed yet (at most RANGE_BYTES); empty when there are none yet. */
  async read(): Promise<Buffer> {
    const start = this.#printed;
    const response = await this.#retried(
      `reading ${this.#target} from byte ${start}`,
      `${this.#objectUrl(this.#generation)}&alt=media`,
      { range: `bytes=${start}-${start + RANGE_BYTES - 1}` },
      'arraybuffer',
    );
    if (response.status === 416) return Buffer.alloc(0);
    if (response.status === 404) throw await this.#gone();
    if (response.status === 200 && start === 0) return this.#bytesOf(response);
    this.#expect(response, 206);
    // A server that ignored the range would repeat bytes already printed, or skip some.
    const first = /^bytes (\d+)-/.exec(getHeader(response.headers, 'content-range') ?? '')?.[1];
    if (first === undefined || Number(first) !== start) throw this.#fail({ kind: 'wrong-range', start }, response.status);
    return this.#bytesOf(response);
  }

  /** The pinned generation is gone: finds out whether the object was deleted or replaced, for the message. */
  async #gone(): Promise<ObjectReadError> {
    let live: string | null | undefined;
    try {
      const response = await this.#retried(`looking up the live generation of ${this.#target}`, this.#objectUrl(undefined), {}, 'text');
      if (response.status === 404) live = null;
      else if (response.status === 200) live = parseResource(response.data)?.generation;
    } catch (error) {
      if (this.#signal.aborted) throw error;
    }
    // The pinned generation answering now would make its 404 a glitch; say only that it disappeared.
    return this.#fail({ kind: 'gone', live: live === this.#generation ? undefined : live });
  }

  /**
   * One request, retried while it fails transiently (within the budget). Resolves with any other answer; throws
   * ObjectReadError when retries are spent or the failure cannot be retried, the signal's reason once it aborts.
   */
  async #retried(what: string, url: string, headers: Record<string, string>, type: HttpRequest['responseType']): Promise<HttpResponse> {
    for (;;) {
      let failure: GcsUploadError;
      try {
        const response = await this.#attempt(what, url, headers, type);
        if (!isTransientStatus(response.status)) return response;
        failure = new HttpStatusError(what, response.status, serverMessage(asText(response)), {
          transient: true,
          retryAfterMs: parseRetryAfterMs(getHeader(response.headers, 'retry-after')),
        });
      } catch (error) {
        if (!(error instanceof GcsUploadError)) throw error;
        if (!error.retryable) throw this.#fail({ kind: 'rejected', status: error.status, detail: error.message }, error.status);
        failure = error;
      }
      try {
        await this.#budget.failed(failure, this.#signal, this.#onRetry);
      } catch (error) {
        if (!(error instanceof RetryExhaustedError)) throw error;
        const last = { kind: 'retries-exhausted', attempts: this.#retry.maxAttempts, last: failure.message } as const;
        throw this.#fail(last, failure.status);
      }
    }
  }

  /**
   * One request with the library's stall timeout. Failures without an answer are classified as the library does
   * (NetworkError and RequestTimeoutError are transient; credentials that cannot be obtained are not).
   */
  async #attempt(what: string, url: string, headers: Record<string, string>, type: HttpRequest['responseType']): Promise<HttpResponse> {
    this.#signal.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#retry.stallTimeoutMs);
    const onAbort = (): void => controller.abort(this.#signal.reason);
    this.#signal.addEventListener('abort', onAbort, { once: true });
    let sent = false;
    const request: HttpRequest = {
      url,
      method: 'GET',
      headers: { ...this.#headers, ...headers },
      responseType: type,
      validateStatus: (status) => status !== 401,
      retry: false,
      redirect: 'manual',
      signal: controller.signal,
      onSend: () => {
        sent = true;
      },
    };
    try {
      return await answerOf(this.#client.request(request), { url, sent: () => sent });
    } catch (error) {
      throw classifyFailure(what, error, this.#signal, timedOut, this.#retry.stallTimeoutMs, { url, sent });
    } finally {
      clearTimeout(timer);
      this.#signal.removeEventListener('abort', onAbort);
    }
  }

  #objectUrl(generation: string | undefined): string {
    return generation === undefined ? `${this.#url}?` : `${this.#url}?generation=${generation}`;
  }

  #expect(response: HttpResponse, status: number): void {
    if (response.status === status) return;
    throw this.#fail({ kind: 'rejected', status: response.status, detail: serverMessage(asText(response)) }, response.status);
  }

  #bytesOf(response: HttpResponse): Buffer {
    const data = response.data;
    if (Buffer.isBuffer(data)) return data;
    if (data instanceof ArrayBuffer) return Buffer.from(data);
    throw this.#fail({ kind: 'text-media' });
  }

  #fail(failure: ObjectReadFailure, status?: number): ObjectReadError {
    const at = { target: this.#target, generation: this.#generation, printed: this.#printed };
    return new ObjectReadError(failure, at, status === undefined ? {} : { status });
  }
}

/** `response` with a media error body (a Buffer) as text, for serverMessage. */
function asText(response: HttpResponse): HttpResponse {
  return Buffer.isBuffer(response.data) ? { ...response, data: response.data.toString('utf8') } : response;
}

function parseResource(data: unknown): ObjectState | undefined {
  try {
    const resource = (typeof data === 'string' ? JSON.parse(data) : data) as Record<string, unknown>;
    const size = Number(resource.size);
    if (!Number.isSafeInteger(size) || size < 0 || typeof resource.generation !== 'string') return undefined;
    // `timeFinalized` is the JSON API's field; `finalizeTime` is its gRPC name, accepted in case a proxy passes it on.
    const finalized = resource.timeFinalized !== undefined || resource.finalizeTime !== undefined;
    return { size, generation: resource.generation, finalized };
  } catch {
    return undefined;
  }
}
