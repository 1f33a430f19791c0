/**
 * `gcs-stream cat [--follow] gs://BUCKET/OBJECT`: prints an object on stdout through the JSON API, with the same
 * credentials rule as `cp` (the default client of `clientFor`: Application Default Credentials for Google, none for
 * an emulator). With `--follow` it keeps printing as an appendable object grows, polling its metadata every
 * `--interval`, until GCS reports it finalized (`timeFinalized`), like `tail -f` that knows when the file is done.
 */
import { once } from 'node:events';
import { clientFor, getHeader, type AuthorizedClient, type HttpRequest, type HttpResponse } from '../auth.js';
import { isEmulatorEndpoint, resolveEndpoint } from '../options.js';
import type { GsLocation } from './gs-url.js';
import { ObjectReadError } from './object-read-error.js';

/** Parsed flags of `gcs-stream cat`. */
export interface CatFlags {
  follow?: boolean;
  /** `--interval`, in ms. */
  interval?: number;
  endpoint?: string;
  userProject?: string;
}

/** What became of a `cat`. */
export type CatResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'interrupted'; readonly signal: 'SIGINT' | 'SIGTERM' };

/** Default `--interval`. */
export const DEFAULT_FOLLOW_INTERVAL_MS = 1_000;
/** Bytes per media request: below the transport's cap on a response held in memory, so memory stays bounded. */
const RANGE_BYTES = 2 * 1024 * 1024;

/** What `cat` reads from an object resource. */
interface ObjectState {
  size: number;
  generation: string;
  finalized: boolean;
}

/** Reads metadata and byte ranges of one object; pins the generation seen first, so a replacement is noticed. */
class ObjectReader {
  readonly #client: AuthorizedClient;
  readonly #url: string;
  readonly #target: string;
  readonly #headers: Record<string, string>;
  readonly #signal: AbortSignal;
  #generation: string | undefined;

  constructor(endpoint: string, location: GsLocation, flags: CatFlags, signal: AbortSignal) {
    this.#client = clientFor({ authClient: undefined, isEmulator: isEmulatorEndpoint(flags.endpoint, endpoint) });
    this.#url = `${endpoint}/storage/v1/b/${encodeURIComponent(location.bucket)}/o/${encodeURIComponent(location.name)}`;
    this.#target = `gs://${location.bucket}/${location.name}`;
    this.#headers = flags.userProject === undefined ? {} : { 'x-goog-user-project': flags.userProject };
    this.#signal = signal;
  }

  async state(): Promise<ObjectState> {
    const response = await this.#request(this.#query(), {}, 'text');
    if (response.status === 404) {
      throw this.#generation === undefined
        ? new ObjectReadError('ERR_GCS_STREAM_NOT_FOUND', `${this.#target} does not exist`, 404)
        : new ObjectReadError('ERR_GCS_STREAM_GONE', `${this.#target} disappeared (deleted or replaced) while it was followed`, 404);
    }
    this.#check(response, 200);
    const resource = parseResource(response.data);
    if (resource === undefined)
      throw new ObjectReadError('ERR_GCS_STREAM_READ', `GCS sent an unreadable object resource for ${this.#target}`);
    this.#generation ??= resource.generation;
    return resource;
  }

  /** Bytes from `start` (at most RANGE_BYTES); empty when there are none yet. */
  async read(start: number): Promise<Buffer> {
    const range = `bytes=${start}-${start + RANGE_BYTES - 1}`;
    const response = await this.#request(`${this.#query()}&alt=media`, { range }, 'arraybuffer');
    if (response.status === 416) return Buffer.alloc(0);
    if (response.status === 404) {
      throw new ObjectReadError('ERR_GCS_STREAM_GONE', `${this.#target} disappeared (deleted or replaced) while it was read`, 404);
    }
    if (response.status === 200 && start === 0) return toBuffer(response.data);
    this.#check(response, 206);
    // A server that ignored the range would repeat bytes already printed.
    const first = /^bytes (\d+)-/.exec(getHeader(response.headers, 'content-range') ?? '')?.[1];
    if (first === undefined || Number(first) !== start) {
      throw new ObjectReadError('ERR_GCS_STREAM_READ', `GCS answered a read from byte ${start} of ${this.#target} with another range`);
    }
    return toBuffer(response.data);
  }

  #query(): string {
    return this.#generation === undefined ? `${this.#url}?` : `${this.#url}?generation=${this.#generation}`;
  }

  #request(url: string, headers: Record<string, string>, responseType: HttpRequest['responseType']): Promise<HttpResponse> {
    return this.#client.request({
      url,
      method: 'GET',
      headers: { ...this.#headers, ...headers },
      responseType,
      validateStatus: (status) => status !== 401,
      retry: false,
      redirect: 'manual',
      signal: this.#signal,
    });
  }

  #check(response: HttpResponse, expected: number): void {
    if (response.status === expected) return;
    throw new ObjectReadError(
      'ERR_GCS_STREAM_READ',
      `reading ${this.#target} failed: HTTP ${response.status}${errorMessageOf(response.data)}`,
      response.status,
    );
  }
}

function toBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  throw new ObjectReadError(
    'ERR_GCS_STREAM_READ',
    'the HTTP client returned object media as text; it must honour responseType arraybuffer',
  );
}

/** `: message` from a JSON API error body, if it has one. */
function errorMessageOf(data: unknown): string {
  try {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? `: ${message}` : '';
  } catch {
    return '';
  }
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

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Prints `location` on stdout; with `--follow`, until it is finalized. */
export async function cat(location: GsLocation, flags: CatFlags): Promise<CatResult> {
  const endpoint = resolveEndpoint(flags.endpoint);
  const controller = new AbortController();
  const reader = new ObjectReader(endpoint, location, flags, controller.signal);
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    interrupted ??= signal;
    controller.abort();
  };
  // A reader that went away (`cat --follow | head`) is the normal end of a pipe, not a failure.
  const onStdoutError = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);
  const interval = flags.interval ?? DEFAULT_FOLLOW_INTERVAL_MS;
  let printed = 0;
  try {
    for (;;) {
      const state = await reader.state();
      while (printed < state.size) {
        const bytes = await reader.read(printed);
        if (bytes.length === 0) break;
        printed += bytes.length;
        if (!process.stdout.write(bytes)) await once(process.stdout, 'drain', { signal: controller.signal });
      }
      if (!flags.follow || (state.finalized && printed >= state.size)) break;
      await pause(interval, controller.signal);
      if (controller.signal.aborted) break;
    }
  } catch (error) {
    if (!controller.signal.aborted) return { kind: 'failed', error };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
  }
  if (interrupted !== undefined) return { kind: 'interrupted', signal: interrupted };
  return { kind: 'done' };
}
