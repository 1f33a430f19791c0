/**
 * `ResumableSession`: the JSON API resumable upload protocol and nothing else. It builds requests, sends them
 * through the {@link AuthorizedClient} with a per-request deadline, and turns responses into typed results or
 * typed errors. It holds no upload state beyond the session URI.
 */
import { getHeader, type AuthorizedClient, type HttpRequest, type HttpResponse } from './auth.js';
import {
  AuthenticationError,
  ChecksumMismatchError,
  GcsUploadError,
  HttpStatusError,
  NetworkError,
  PermissionDeniedError,
  PreconditionFailedError,
  ProtocolError,
  RequestTimeoutError,
  SessionExpiredError,
} from './errors.js';
import { describeCause, isNetworkFailure, oneLine } from './error-text.js';
import { isTransientStatus, parseRetryAfterMs } from './retry.js';
import type { ObjectMetadata } from './options.js';
import { debug, debugEnabled, safeUrl } from './debug.js';

/** The object resource GCS returns when an upload completes: the writable fields, plus what GCS sets. */
export interface ObjectResource extends ObjectMetadata {
  name: string;
  bucket: string;
  /** Decimal string. */
  size: string;
  generation?: string;
  metageneration?: string;
  /** Base64 big-endian CRC32C. */
  crc32c?: string;
  /** Base64 MD5 (absent for composite objects). */
  md5Hash?: string;
}

/** What a DELETE of the session established. */
export type CancelOutcome =
  | { readonly kind: 'cancelled' | 'gone' | 'unknown' }
  | { readonly kind: 'completed'; readonly object: ObjectResource };

/** What a chunk upload or status query established. */
export type SessionState =
  | { readonly complete: false; readonly committed: number }
  | { readonly complete: true; readonly object: ObjectResource };

/** Where and what to upload; fixed for the life of a session. */
export interface SessionTarget {
  apiEndpoint: string;
  bucket: string;
  name: string;
  resource: Readonly<ObjectMetadata>;
  query: Readonly<Record<string, string>>;
  /** The object's size, when declared up front. */
  size?: number | undefined;
}

const USER_AGENT = 'gcs-resumable-stream/0.1';

/** The parts of a request each method fills in; #send adds the rest. */
type SendRequest = Pick<HttpRequest, 'url' | 'method' | 'headers' | 'data' | 'onBodySent'>;

/** The wire protocol of one resumable upload session. */
export class ResumableSession {
  readonly #client: AuthorizedClient;
  readonly #target: SessionTarget;
  readonly #timeoutMs: number;
  #uri: string | undefined;

  constructor(client: AuthorizedClient, target: SessionTarget, timeoutMs: number, uri?: string) {
    this.#client = client;
    this.#target = target;
    this.#timeoutMs = timeoutMs;
    this.#uri = uri;
  }

  /** The session URI once opened (a bearer capability: do not log it). */
  get uri(): string | undefined {
    return this.#uri;
  }

  /** Starts a session: POST the object resource, read the session URI from `Location`. */
  async open(signal: AbortSignal, onBodySent?: () => void): Promise<string> {
    const { apiEndpoint, bucket, name, resource, query } = this.#target;
    const url = new URL(`${apiEndpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`);
    url.searchParams.set('uploadType', 'resumable');
    url.searchParams.set('name', name);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json; charset=UTF-8',
      'User-Agent': USER_AGENT,
    };
    if (typeof resource.contentType === 'string') headers['X-Upload-Content-Type'] = resource.contentType;
    if (this.#target.size !== undefined) headers['X-Upload-Content-Length'] = String(this.#target.size);
    const what = 'Opening the upload session';
    const res = await this.#send(what, { url: url.toString(), method: 'POST', headers, data: JSON.stringify({ ...resource, name }), onBodySent }, signal);
    if (res.status !== 200 && res.status !== 201) throw statusError(what, res, 'endpoint');
    const location = getHeader(res.headers, 'location');
    if (!location) throw new ProtocolError({ kind: 'no-location' }, res.status);
    let sessionUrl: URL;
    try {
      sessionUrl = new URL(location);
    } catch {
      throw new ProtocolError({ kind: 'bad-location' }, res.status);
    }
    const endpoint = new URL(apiEndpoint);
    if (sessionUrl.origin !== endpoint.origin) {
      // Data and credentials go only where the user pointed us; a session elsewhere is never followed.
      throw new ProtocolError({ kind: 'foreign-origin', sessionOrigin: `${sessionUrl.protocol}//${sessionUrl.host}`, endpointOrigin: endpoint.origin }, res.status);
    }
    this.#uri = sessionUrl.toString();
    return this.#uri;
  }

  /**
   * Uploads `body` at `offset`. With `total` the request ends the object (and carries `hash`, the
   * `X-Goog-Hash` value). Returns what the server committed, or the object if the upload completed.
   */
  async put(
    offset: number,
    body: Uint8Array,
    total: number | undefined,
    hash: string | undefined,
    signal: AbortSignal,
    onBodySent?: () => void,
  ): Promise<SessionState> {
    const end = offset + body.length - 1;
    // A declared size is said in every Content-Range of the session: GCS completes the upload once that many bytes
    // have arrived, whatever a request says, so the header should agree with what will happen.
    const rangeTotal = total ?? this.#target.size;
    const range =
      body.length === 0 ? `bytes */${rangeTotal ?? '*'}` : `bytes ${offset}-${end}/${rangeTotal ?? '*'}`;
    const headers: Record<string, string> = { 'Content-Range': range, 'User-Agent': USER_AGENT };
    if (total !== undefined && hash !== undefined) headers['X-Goog-Hash'] = hash;
    const what =
      total === undefined
        ? `Uploading bytes ${offset}-${end}`
        : body.length === 0
          ? `Finalizing the upload at ${total} bytes`
          : `Uploading the final bytes ${offset}-${end} of ${total}`;
    const res = await this.#send(what, { url: this.#sessionUri(), method: 'PUT', headers, data: body, onBodySent }, signal);
    return parseState(what, res, total);
  }

  /** Asks how many bytes are committed (`Content-Range: bytes *\/*`). */
  async query(signal: AbortSignal): Promise<SessionState> {
    const what = 'Querying the upload status';
    const res = await this.#send(
      what,
      { url: this.#sessionUri(), method: 'PUT', headers: { 'Content-Range': 'bytes */*', 'User-Agent': USER_AGENT }, data: new Uint8Array(0) },
      signal,
    );
    return parseState(what, res);
  }

  /**
   * Cancels the session (DELETE). `cancelled`: GCS confirmed (499), nothing can be finalized any more; `gone`: the
   * session no longer exists (404/410); `completed`: the upload had already finalized this object; `unknown`:
   * any other answer.
   */
  async cancel(signal: AbortSignal): Promise<CancelOutcome> {
    const res = await this.#send('Cancelling the session', {
      url: this.#sessionUri(),
      method: 'DELETE',
      headers: { 'User-Agent': USER_AGENT },
    }, signal);
    if (res.status === 499 || res.status === 204) return { kind: 'cancelled' };
    if (res.status === 404 || res.status === 410) return { kind: 'gone' };
    if (res.status === 200 || res.status === 201) {
      try {
        return { kind: 'completed', object: parseObject(res) };
      } catch {
        return { kind: 'unknown' };
      }
    }
    return { kind: 'unknown' };
  }

  /** The live object's metadata, or undefined if there is none (404). */
  async getObject(signal: AbortSignal): Promise<ObjectResource | undefined> {
    const what = 'Reading the object metadata';
    const res = await this.#send(what, { url: this.#objectUrl(), method: 'GET', headers: { 'User-Agent': USER_AGENT } }, signal);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw statusError(what, res, 'endpoint');
    return parseObject(res);
  }

  /** Deletes one generation of the target object (used to withdraw a generation that failed verification). */
  async deleteObject(generation: string, signal: AbortSignal): Promise<boolean> {
    const url = this.#objectUrl({ generation });
    const res = await this.#send('Deleting the corrupt generation', { url, method: 'DELETE', headers: { 'User-Agent': USER_AGENT } }, signal);
    return res.status === 204 || res.status === 200 || res.status === 404;
  }

  /** The JSON API URL of the target object (with `userProject` when set, and any `extra` parameters). */
  #objectUrl(extra: Record<string, string> = {}): string {
    const { apiEndpoint, bucket, name, query } = this.#target;
    const url = new URL(`${apiEndpoint}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    if (query.userProject !== undefined) url.searchParams.set('userProject', query.userProject);
    return url.toString();
  }

  #sessionUri(): string {
    if (this.#uri === undefined) throw new Error('session not opened');
    return this.#uri;
  }

  /** One request with a deadline; failures without a response become NetworkError or RequestTimeoutError. */
  async #send(
    what: string,
    request: SendRequest,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    signal.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new RequestTimeoutError(what, this.#timeoutMs));
    }, this.#timeoutMs);
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // Whether the auth client got as far as our transport: only then did it have credentials for this request.
    let sent = false;
    try {
      const options: HttpRequest = {
        ...request,
        responseType: 'text',
        validateStatus: acceptAllBut401,
        retry: false,
        redirect: 'manual',
        signal: controller.signal,
        // Our transport says when it starts sending: only then had the auth client credentials for this request.
        onSend: () => {
          sent = true;
        },
      };
      if (debugEnabled()) debug('request', { method: request.method, url: safeUrl(request.url, this.#uri), range: request.headers['Content-Range'], bytes: request.data?.length ?? 0 });
      const response = await untilAborted(answerOf(this.#client.request(options), { url: request.url, sent: () => sent }), controller.signal);
      if (debugEnabled()) debug('response', { method: request.method, status: response.status, range: getHeader(response.headers, 'range') });
      return response;
    } catch (error) {
      const failure = classifyFailure(what, error, signal, timedOut, this.#timeoutMs, { url: request.url, sent });
      if (debugEnabled()) debug('request failed', { method: request.method, code: failure instanceof GcsUploadError ? failure.code : 'aborted', detail: describeCause(error) });
      throw failure;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * The response, also when the client threw it: a wrapper that passes on only some of our request options (not
 * `validateStatus`) makes gaxios throw a GaxiosError for a 308, which is the protocol's "incomplete", not a failure.
 */
async function answerOf(request: Promise<HttpResponse>, asked: { url: string; sent: () => boolean }): Promise<HttpResponse> {
  try {
    return await request;
  } catch (error) {
    const response = (error as { response?: HttpResponse }).response;
    const ours = response !== undefined && typeof response.status === 'number' && answersRequest(response, { url: asked.url, sent: asked.sent() });
    if (ours && response.status !== 401) return response;
    throw error;
  }
}

/** `request`, or the signal's reason once it aborts: a client that ignores the signal cannot outlive the deadline. */
function untilAborted<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([request, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
}

/** Every status is the library's to interpret, except 401, which auth clients answer with one token refresh. */
function acceptAllBut401(status: number): boolean {
  return status !== 401;
}

/**
 * Turns what a failed request threw into the error to report. `request.sent`: the library's transport was called,
 * so the auth client had credentials for it. A failure before that, neither on the network nor a timeout, is the
 * auth client's own (a key file it cannot read, a grant its token endpoint refused): retrying cannot help.
 */
function classifyFailure(
  what: string,
  error: unknown,
  signal: AbortSignal,
  timedOut: boolean,
  timeoutMs: number,
  request: { url: string; sent: boolean },
): unknown {
  if (signal.aborted) return signal.reason;
  if (timedOut) return new RequestTimeoutError(what, timeoutMs);
  const response = (error as { response?: HttpResponse }).response;
  if (response && typeof response.status === 'number') {
    if (answersRequest(response, request)) return statusError(what, response);
    // The auth client's own request failed (its token endpoint): not an answer to ours.
    return isTransientStatus(response.status)
      ? new HttpStatusError(`${what}: obtaining credentials`, response.status, undefined, { transient: true })
      : new AuthenticationError(what, { reason: 'unobtainable', cause: error });
  }
  if (error instanceof GcsUploadError) return error;
  if (!request.sent && !isNetworkFailure(error)) return new AuthenticationError(what, { reason: 'unobtainable', cause: error });
  return new NetworkError(what, error);
}

/** Whether `response` is the answer to `request` rather than to a request of the auth client's own. */
function answersRequest(response: HttpResponse, request: { url: string; sent: boolean }): boolean {
  const url = (response as { config?: { url?: unknown } }).config?.url;
  if (typeof url !== 'string' && !(url instanceof URL)) return request.sent;
  try {
    const answered = new URL(url);
    const asked = new URL(request.url);
    return answered.origin === asked.origin && answered.pathname === asked.pathname;
  } catch {
    return request.sent;
  }
}

/** Interprets a chunk or query response; `total`: the object size the request declared, if it did. */
function parseState(what: string, res: HttpResponse, total?: number): SessionState {
  if (res.status === 308) {
    return { complete: false, committed: parseRange(getHeader(res.headers, 'range'), res.status) };
  }
  if (res.status === 200 || res.status === 201) {
    return { complete: true, object: parseObject(res, total) };
  }
  throw statusError(what, res);
}

/** `Range: bytes=0-N` means N+1 bytes are committed; no header means none. */
export function parseRange(header: string | undefined, status: number): number {
  if (header === undefined || header === '') return 0;
  const match = /^bytes=0-(\d{1,16})$/.exec(header.trim());
  if (!match) {
    throw new ProtocolError({ kind: 'malformed-range', header }, status);
  }
  const last = Number(match[1]);
  if (!Number.isSafeInteger(last)) throw new ProtocolError({ kind: 'range-overflow' }, status);
  return last + 1;
}

/** Checksums of zero bytes, as object resources carry them. */
const EMPTY_CRC32C = 'AAAAAA==';
const EMPTY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';

/**
 * Whether an object resource without `size` is of an empty object by every sign it has: its checksums are those of
 * nothing, and `total` (the size the request declared, if it did) is 0. storage-testbench writes its JSON from
 * proto3, which leaves out fields that hold zero, so an empty object comes without `size`.
 */
function emptyBySigns(object: Partial<ObjectResource>, total: number | undefined): boolean {
  const signs: boolean[] = [];
  if (object.crc32c !== undefined) signs.push(object.crc32c === EMPTY_CRC32C);
  if (object.md5Hash !== undefined) signs.push(object.md5Hash === EMPTY_MD5);
  if (total !== undefined) signs.push(total === 0);
  return signs.length > 0 && signs.every(Boolean);
}

/** The object resource of a 200/201; `total`: the object size the request declared, if it did. */
function parseObject(res: HttpResponse, total?: number): ObjectResource {
  let value: unknown = res.data;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new ProtocolError({ kind: 'not-json' }, res.status);
    }
  }
  const object = value as Partial<ObjectResource> | null;
  if (typeof object !== 'object' || object === null || typeof object.name !== 'string' || typeof object.bucket !== 'string') {
    throw new ProtocolError({ kind: 'not-object' }, res.status);
  }
  const size = object.size === undefined && emptyBySigns(object, total) ? '0' : object.size;
  if (!/^\d+$/.test(String(size))) throw new ProtocolError({ kind: 'not-object' }, res.status);
  return { ...(object as ObjectResource), size: String(size) };
}

/** The short message GCS put in an error body, redacted and bounded. */
function serverMessage(res: HttpResponse): string | undefined {
  const data = res.data;
  let text: string | undefined;
  if (typeof data === 'string' && data.length > 0) {
    try {
      const parsed = JSON.parse(data) as { error?: { message?: unknown } };
      text = typeof parsed.error?.message === 'string' ? parsed.error.message : data;
    } catch {
      text = data;
    }
  } else if (typeof data === 'object' && data !== null) {
    const message = (data as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') text = message;
  }
  return text === undefined ? undefined : oneLine(text);
}

/**
 * Maps a non-success status to its typed error. `target` says what was addressed: a 404/410 from the session URI
 * means the session is gone; from the endpoint (open, object metadata) it is an ordinary failure.
 */
function statusError(what: string, res: HttpResponse, target: 'session' | 'endpoint' = 'session'): GcsUploadError {
  const message = serverMessage(res);
  switch (res.status) {
    case 401:
      return new AuthenticationError(what, { reason: 'rejected', serverMessage: message });
    case 403:
      return new PermissionDeniedError(what, message);
    case 404:
    case 410:
      return target === 'endpoint' ? new HttpStatusError(what, res.status, message, { transient: false }) : new SessionExpiredError(res.status);
    case 412:
      return new PreconditionFailedError(what, message);
    case 400:
      // A refusal to finalize over checksums can also reach a status query after the final response was lost.
      if (message !== undefined && /crc32c|md5|hash|checksum/i.test(message)) {
        return new ChecksumMismatchError({ kind: 'refused', serverMessage: message });
      }
      return new HttpStatusError(what, res.status, message, { transient: false });
    default:
      return new HttpStatusError(what, res.status, message, {
        transient: isTransientStatus(res.status),
        retryAfterMs: parseRetryAfterMs(getHeader(res.headers, 'retry-after')),
      });
  }
}
