/**
 * One JSON API request with a deadline, through an {@link AuthorizedClient}: the resumable session and the object
 * API (compose, delete, list) send every request through here, so that they share the transport options, the
 * deadline, the request headers and the way failures without a response become typed errors.
 */
import { getHeader, type AuthorizedClient, type HttpRequest, type HttpResponse } from './auth.js';
import { GcsUploadError, RequestTimeoutError } from './errors.js';
import { describeCause } from './error-text.js';
import { answerOf, classifyFailure } from './responses.js';
import { debug, debugEnabled, safeUrl } from './debug.js';

/** The User-Agent of every request the library makes. */
export const USER_AGENT = 'gcs-resumable-stream/0.1';

/** The parts of a request a caller fills in; {@link sendRequest} adds the rest. */
export type SendRequest = Pick<HttpRequest, 'url' | 'method' | 'headers' | 'data' | 'onBodySent'>;

/** What every request of one caller shares. */
export interface RequestContext {
  readonly client: AuthorizedClient;
  /** Deadline of one request (`retry.stallTimeoutMs`). */
  readonly timeoutMs: number;
  /** The user's extra headers (the protocol's own win). */
  readonly requestHeaders?: Readonly<Record<string, string>> | undefined;
  /** A URL never to print (the session URI): debug lines show a placeholder instead. */
  readonly secretUri?: string | undefined;
}

/**
 * Sends `request` with a deadline of `context.timeoutMs`; resolves with any answer but 401 (which auth clients
 * refresh a token on). A failure without a response becomes `NetworkError`, `RequestTimeoutError` or
 * `AuthenticationError`; an abort of `signal` rejects with its reason. `what` names the step in messages.
 */
export async function sendRequest(context: RequestContext, what: string, request: SendRequest, signal: AbortSignal): Promise<HttpResponse> {
  signal.throwIfAborted();
  const { timeoutMs } = context;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new RequestTimeoutError(what, timeoutMs));
  }, timeoutMs);
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  // Whether the auth client got as far as our transport: only then did it have credentials for this request.
  let sent = false;
  try {
    const options: HttpRequest = {
      ...request,
      headers: { ...context.requestHeaders, ...request.headers },
      responseType: 'text',
      validateStatus: acceptAllBut401,
      retry: false,
      redirect: 'manual',
      signal: controller.signal,
      onSend: () => {
        sent = true;
      },
    };
    if (debugEnabled())
      debug('request', {
        method: request.method,
        url: safeUrl(request.url, context.secretUri),
        range: request.headers['Content-Range'],
        bytes: bodyLength(request.data),
      });
    const response = await untilAborted(
      answerOf(context.client.request(options), { url: request.url, sent: () => sent }),
      controller.signal,
    );
    if (debugEnabled()) debug('response', { method: request.method, status: response.status, range: getHeader(response.headers, 'range') });
    return response;
  } catch (error) {
    const failure = classifyFailure(what, error, signal, timedOut, timeoutMs, { url: request.url, sent });
    if (debugEnabled())
      debug('request failed', {
        method: request.method,
        code: failure instanceof GcsUploadError ? failure.code : 'aborted',
        detail: describeCause(error),
      });
    throw failure;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
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

/** Bytes in a request body (for debug lines). */
function bodyLength(data: HttpRequest['data']): number {
  return typeof data === 'string' || data instanceof Uint8Array ? data.length : ((data as { length?: number } | undefined)?.length ?? 0);
}
