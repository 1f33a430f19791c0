/**
 * Opt-in diagnostics: `NODE_DEBUG=gcs-resumable-stream` prints one line per request, response, retry and
 * recovery to stderr. Lines carry methods, ranges, statuses and offsets; never headers, tokens, upload ids (URLs
 * are reduced to their origin and path) or object data.
 */
import { debuglog } from 'node:util';
import { redact } from './error-text.js';

const log = debuglog('gcs-resumable-stream');

/** Whether debug output is on (checked once per call site to avoid building lines for nothing). */
export function debugEnabled(): boolean {
  return log.enabled;
}

/** A URL without query, credentials or fragment: the upload id lives in the query. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}${parsed.searchParams.has('upload_id') ? '?upload_id=<redacted>' : ''}`;
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
