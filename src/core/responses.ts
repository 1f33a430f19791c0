/**
 * What the server's answers mean: responses (and what a request threw) turned into typed results (a committed
 * offset, an object) or typed errors. No I/O here; session.ts sends the requests.
 */
import { getHeader, type HttpResponse } from './auth.js';
import {
  AuthenticationError,
  BucketNotFoundError,
  ChecksumMismatchError,
  GcsUploadError,
  HttpStatusError,
  NetworkError,
  PermissionDeniedError,
  PreconditionFailedError,
  ProtocolError,
  RequestTimeoutError,
  SessionExpiredError,
  type ConnectionTarget,
} from './errors.js';
import { causeChain, isNetworkFailure, oneLine } from './error-text.js';
import { isGoogleHost, type ObjectMetadata } from './options.js';
import { isTransientStatus, parseRetryAfterMs } from './retry.js';

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
  { readonly kind: 'cancelled' | 'gone' | 'unknown' } | { readonly kind: 'completed'; readonly object: ObjectResource };

/** What a chunk upload or status query established. */
export type SessionState =
  { readonly complete: false; readonly committed: number } | { readonly complete: true; readonly object: ObjectResource };

/**
 * The response, also when the client threw it: a wrapper that passes on only some of our request options (not
 * `validateStatus`) makes gaxios throw a GaxiosError for a 308, which is the protocol's "incomplete", not a failure.
 */
export async function answerOf(request: Promise<HttpResponse>, asked: { url: string; sent: () => boolean }): Promise<HttpResponse> {
  try {
    return await request;
  } catch (error) {
    const response = (error as { response?: HttpResponse }).response;
    const ours =
      response !== undefined && typeof response.status === 'number' && answersRequest(response, { url: asked.url, sent: asked.sent() });
    if (ours && response.status !== 401) return response;
    throw error;
  }
}

/**
 * Turns what a failed request threw into the error to report. `request.sent`: the library's transport was called,
 * so the auth client had credentials for it. A failure before that, neither on the network nor a timeout, is the
 * auth client's own (a key file it cannot read, a grant its token endpoint refused): retrying cannot help.
 */
export function classifyFailure(
  what: string,
  error: unknown,
  signal: AbortSignal,
  timedOut: boolean,
  timeoutMs: number,
  request: { url: string; sent: boolean },
): unknown {
  if (signal.aborted) return signal.reason;
  const target = connectionTarget(request.url, error, request.sent);
  if (timedOut) return new RequestTimeoutError(what, timeoutMs, target?.host);
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
  return new NetworkError(what, error, target);
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'https:': '443', 'http:': '80' };

/**
 * Where the failed connection went. `sent`: our transport made it, so it went to the request's host, and a refusal
 * there is final unless the host is Google's (where a refused connection is a front end's blip: retried). Otherwise
 * the auth client's own connection failed (its token endpoint): the system error names where it went, and its
 * refusal stays retryable (it is not this library's endpoint that is misconfigured).
 */
function connectionTarget(url: string, error: unknown, sent: boolean): ConnectionTarget | undefined {
  if (sent) {
    try {
      const parsed = new URL(url);
      const port = parsed.port || DEFAULT_PORTS[parsed.protocol] || '';
      return { host: `${parsed.hostname}:${port}`, refusalIsFinal: !isGoogleHost(url) };
    } catch {
      return undefined;
    }
  }
  for (const cause of causeChain(error)) {
    const { address, port } = cause as { address?: unknown; port?: unknown };
    if (typeof address === 'string' && (typeof port === 'number' || typeof port === 'string')) {
      return { host: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`, refusalIsFinal: false };
    }
  }
  return undefined;
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
export function parseState(what: string, res: HttpResponse, total?: number): SessionState {
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
export function parseObject(res: HttpResponse, total?: number): ObjectResource {
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

/** The short message GCS put in an error body (text or parsed JSON), redacted and bounded. */
export function serverMessage(res: HttpResponse): string | undefined {
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

/** The message of GCS's 404 for a missing bucket ("The specified bucket does not exist."), and emulators' like it. */
const BUCKET_MISSING = /bucket.*(?:does not exist|not found)|no such bucket/i;

/**
 * Maps a non-success status to its typed error. `target` says what was addressed: a 404/410 from the session URI
 * means the session is gone; from the endpoint (open, object metadata) it is an ordinary failure.
 */
export function statusError(what: string, res: HttpResponse, target: 'session' | 'endpoint' = 'session'): GcsUploadError {
  const message = serverMessage(res);
  switch (res.status) {
    case 401:
      return new AuthenticationError(what, { reason: 'rejected', serverMessage: message });
    case 403:
      return new PermissionDeniedError(what, message);
    case 404:
      // GCS answers an open (or any request) naming a missing bucket so; an open never 404s for another reason.
      if (target === 'endpoint' && (message === undefined || BUCKET_MISSING.test(message) || /^not found\.?$/i.test(message))) {
        return new BucketNotFoundError(what);
      }
      return target === 'endpoint'
        ? new HttpStatusError(what, res.status, message, { transient: false })
        : new SessionExpiredError(res.status);
    case 410:
      return target === 'endpoint'
        ? new HttpStatusError(what, res.status, message, { transient: false })
        : new SessionExpiredError(res.status);
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
