/**
 * Parsing of the `Content-Range` header of resumable upload `PUT`s, and the kinds of request each form makes.
 */
import type { UploadFaultKind } from './faults.js';

/**
 * A parsed `Content-Range` of a `PUT` to a session.
 * - `query`: `bytes *\/*`, a status query.
 * - `total`: `bytes *\/TOTAL`, finalize (or ask for the status of) an upload of known size without sending bytes.
 * - `bytes`: `bytes A-B/*`, `bytes A-B/TOTAL`, or the open-ended `bytes A-*\/*` / `bytes A-*\/TOTAL` (and a `PUT`
 *   without `Content-Range`, which uploads the whole object from offset 0), where the body's end is the end of the
 *   object.
 */
export type ContentRange =
  { type: 'query' } | { type: 'total'; total: number } | { type: 'bytes'; start: number; end?: number; total?: number; openEnded: boolean };

const CONTENT_RANGE = /^bytes\s+(?:\*|(\d+)-(\d+|\*))\/(\*|\d+)$/i;

function toSize(text: string): number | undefined {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Parses a `Content-Range` header; returns an error message if it is malformed. */
export function parseContentRange(header: string | undefined): ContentRange | string {
  if (header === undefined) return { type: 'bytes', start: 0, openEnded: true };
  const match = CONTENT_RANGE.exec(header.trim());
  if (match === null) return `Malformed Content-Range header: ${JSON.stringify(header)}.`;
  const [, startText, endText, totalText = '*'] = match;
  const total = totalText === '*' ? undefined : toSize(totalText);
  if (totalText !== '*' && total === undefined) return `Content-Range total is too large: ${header}.`;
  if (startText === undefined) return total === undefined ? { type: 'query' } : { type: 'total', total };
  const start = toSize(startText);
  if (start === undefined) return `Content-Range start is too large: ${header}.`;
  if (endText === undefined || endText === '*') {
    return total === undefined ? { type: 'bytes', start, openEnded: true } : { type: 'bytes', start, total, openEnded: true };
  }
  const end = toSize(endText);
  if (end === undefined || end < start) return `Content-Range end must not be below its start: ${header}.`;
  return total === undefined ? { type: 'bytes', start, end, openEnded: false } : { type: 'bytes', start, end, total, openEnded: false };
}

/** The fault kinds a `PUT` with this range counts as; the first one is the kind it is recorded as. */
export function kindsOf(range: ContentRange): readonly UploadFaultKind[] {
  switch (range.type) {
    case 'query':
      return ['query'];
    case 'total':
      return ['final'];
    case 'bytes':
      return range.total !== undefined || range.openEnded ? ['final', 'chunk'] : ['chunk'];
  }
}
