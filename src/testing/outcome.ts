/**
 * Answers of the local GCS server as plain values: routes build them, the fault stage may replace them, the
 * exchange sends them. Error bodies have the JSON API's shape, so that clients parse them as they would GCS's.
 */

/** An HTTP answer, before latency and trickle act on it. `content-length` is added when it is sent. */
export interface Outcome {
  status: number;
  /** The reason phrase; a default one when omitted. */
  message?: string;
  headers: Record<string, string>;
  body: string;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'invalid',
  404: 'notFound',
  405: 'methodNotAllowed',
  408: 'requestTimeout',
  410: 'gone',
  412: 'conditionNotMet',
  416: 'requestedRangeNotSatisfiable',
  429: 'rateLimitExceeded',
  500: 'backendError',
  501: 'notImplemented',
  502: 'badGateway',
  503: 'backendError',
  504: 'gatewayTimeout',
};

/** An answer whose body is `value` as JSON. */
export function jsonOutcome(status: number, value: unknown, headers: Record<string, string> = {}): Outcome {
  return { status, headers: { 'content-type': 'application/json; charset=UTF-8', ...headers }, body: JSON.stringify(value) };
}

/** An error answer with the JSON API's error body (`error.code`, `error.message`, `error.errors[].reason`). */
export function errorOutcome(status: number, message: string, headers: Record<string, string> = {}): Outcome {
  const reason = REASONS[status] ?? 'error';
  return jsonOutcome(status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } }, headers);
}

/** The 308 of a resumable upload that has `committed` bytes and is not complete. */
export function incomplete(committed: number): Outcome {
  const headers: Record<string, string> = {};
  // GCS omits Range entirely when nothing is committed.
  if (committed > 0) headers.range = `bytes=0-${committed - 1}`;
  return { status: 308, message: 'Resume Incomplete', headers, body: '' };
}
