/**
 * Text that may reach an error message or a debug line, made safe: upload ids and bearer tokens removed, low-level
 * causes reduced to what a user can act on (a system error code), lengths bounded.
 */

const UPLOAD_ID = /upload_id=[^&\s"']+/g;
const BEARER = /Bearer\s+[A-Za-z0-9._~+/=-]+/g;

/** Removes upload ids and bearer tokens from any text that may reach a message or a log. */
export function redact(text: string): string {
  return text.replace(UPLOAD_ID, 'upload_id=<redacted>').replace(BEARER, 'Bearer <redacted>');
}

/** The errors of a cause chain, outermost first (cycles cut). */
export function causeChain(cause: unknown): Error[] {
  const chain: Error[] = [];
  let current: unknown = cause;
  while (current instanceof Error && !chain.includes(current)) {
    chain.push(current);
    current = current.cause;
  }
  return chain;
}

/**
 * A copy of the innermost error of a cause chain (the system error a user can act on), with its code and a
 * redacted message, and nothing else: no request config, no URLs with upload ids, no bodies.
 */
export function sanitizeCause(cause: unknown): Error {
  const source = causeChain(cause).at(-1) ?? new Error(String(cause));
  const copy = new Error(redact(source.message).slice(0, 300));
  copy.name = source.name;
  const code = (source as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code });
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

/** A short, redacted description of a low-level failure (a system error code, or a message). */
export function describeCause(cause: unknown): string {
  // Network failures arrive wrapped (GaxiosError -> TypeError('fetch failed') -> SystemError); the innermost code
  // is what a user can act on.
  let best: string | undefined;
  for (const error of causeChain(cause)) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) best = code;
  }
  if (best) return best;
  if (cause instanceof Error) return redact(cause.message).slice(0, 200);
  return redact(String(cause)).slice(0, 200);
}

/** `text` redacted, on one line, at most `max` characters (longer text ends in `...`). */
export function oneLine(text: string, max = 200): string {
  const line = redact(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

/**
 * Error codes of failures on the network itself (connect, DNS, reset, timeout), as Node.js, undici and gaxios
 * report them. An auth client that fails with one of these could not reach its token endpoint: worth retrying.
 */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/** Whether anything in the cause chain is a network-level failure (see NETWORK_CODES) or a timeout. */
export function isNetworkFailure(cause: unknown): boolean {
  return causeChain(cause).some((error) => {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_'))) return true;
    return error.name === 'TimeoutError' || error.name === 'AbortError';
  });
}

/**
 * Why an auth client could not produce credentials, in words that quote nothing of the credentials: a system error
 * code (`ENOENT`), the token endpoint's status and OAuth error code, or the error's class.
 */
export function describeCredentialsFailure(cause: unknown): string {
  const response = (cause as { response?: { status?: unknown; data?: unknown } } | null)?.response;
  if (typeof response?.status === 'number') {
    const data = typeof response.data === 'string' ? safeJson(response.data) : response.data;
    const oauthError = (data as { error?: unknown } | null)?.error;
    const code = typeof oauthError === 'string' && /^[a-z_]{1,64}$/.test(oauthError) ? `: ${oauthError}` : '';
    return `the token endpoint answered HTTP ${response.status}${code}`;
  }
  const chain = causeChain(cause);
  const code = chain.map((error) => (error as { code?: unknown }).code).find((c) => typeof c === 'string' && /^E[A-Z]+$/.test(c));
  if (typeof code === 'string') return code;
  const innermost = chain.at(-1);
  // google-auth-library's message when Application Default Credentials found nothing.
  if (chain.some((error) => error.message.startsWith('Could not load the default credentials'))) return 'no credentials were found';
  return innermost?.name ?? typeof cause;
}

/**
 * The `cause` kept on an unobtainable-credentials error: a system error as sanitizeCause keeps it (its message names
 * the file), anything else by class and code only, since a parser's message may quote the key file.
 */
export function credentialsCause(cause: unknown): Error {
  const copy = sanitizeCause(cause);
  const code = (copy as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return copy;
  copy.message = `${copy.name} (its message is withheld: it may quote the credentials)`;
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
