/**
 * Opt-in diagnostics: `NODE_DEBUG=gcs-resumable-stream` prints one line per request, response, retry and
 * recovery to stderr. Lines carry methods, ranges, statuses and offsets; never headers, tokens, the session URI
 * (session requests say `<session>`; other URLs are reduced to their origin and path) or object data.
 */
import { debuglog } from 'node:util';
import { redact } from './error-text.js';

const log = debuglog('gcs-resumable-stream');

/** Whether debug output is on (checked once per call site to avoid building lines for nothing). */
export function debugEnabled(): boolean {
  return log.enabled;
}

/** What a session request's URL is logged as: GCS keeps the session id in the query, some emulators in the path. */
export const SESSION_URL_LABEL = '<session>';

/**
 * A URL as debug lines show it: `SESSION_URL_LABEL` for the session URI (`sessionUri`), else its origin and path,
 * without query (object names, upload ids), credentials or fragment.
 */
export function safeUrl(url: string, sessionUri?: string): string {
  if (sessionUri !== undefined && url === sessionUri) return SESSION_URL_LABEL;
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/** Logs `event` with `fields` as `key=value` pairs, redacted. */
export function debug(event: string, fields: Record<string, string | number | boolean | undefined> = {}): void {
  if (!log.enabled) return;
  const parts = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' && /\s/.test(value) ? JSON.stringify(value) : String(value)}`);
  log('%s', redact(`${event}${parts.length > 0 ? ' ' : ''}${parts.join(' ')}`));
}
