/**
 * Reading the fields of a request to the local GCS server: headers, integers, URL segments, preconditions, object
 * metadata and `X-Goog-Hash`. Pure functions; a malformed field comes back as a message for a 400, not a throw.
 */
import type { IncomingMessage } from 'node:http';
import { PRECONDITION_NAMES, type ObjectMetadata, type Preconditions } from './object-store.js';

/** A request header's value (the first, if repeated). */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `text` as a safe non-negative integer, or `undefined` if it is absent or not one. */
export function nonNegativeInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Whether `value` is a JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A percent-decoded URL path segment, or `undefined` if its escapes are malformed. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Object metadata from an open request's JSON body and headers. */
export function metadataOf(body: Record<string, unknown>, req: IncomingMessage, url: URL): ObjectMetadata {
  const meta: ObjectMetadata = {};
  for (const field of [
    'contentType',
    'cacheControl',
    'contentEncoding',
    'contentDisposition',
    'contentLanguage',
    'customTime',
    'storageClass',
    'kmsKeyName',
  ] as const) {
    const value = body[field];
    if (typeof value === 'string') meta[field] = value;
  }
  meta.contentType ??= headerValue(req, 'x-upload-content-type');
  if (meta.contentType === undefined) delete meta.contentType;
  const kmsKeyName = url.searchParams.get('kmsKeyName');
  if (kmsKeyName !== null) meta.kmsKeyName = kmsKeyName;
  if (isRecord(body.metadata)) {
    const custom: Record<string, string> = {};
    for (const [key, value] of Object.entries(body.metadata)) {
      if (value !== null && value !== undefined) custom[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    meta.metadata = custom;
  }
  return meta;
}

/** Preconditions from a query string, or an error message if one is not an integer. */
export function preconditionsOf(url: URL): Preconditions | string {
  const preconditions: Preconditions = {};
  for (const name of PRECONDITION_NAMES) {
    const value = url.searchParams.get(name);
    if (value === null) continue;
    if (nonNegativeInteger(value) === undefined) return `Invalid value for ${name}: ${JSON.stringify(value)}.`;
    preconditions[name] = String(Number(value));
  }
  return preconditions;
}

/** The `X-Goog-Hash` header's values, or an error message if it is malformed. */
export function parseGoogHash(header: string): { crc32c?: string; md5?: string } | string {
  const hashes: { crc32c?: string; md5?: string } = {};
  for (const item of header.split(',')) {
    const at = item.indexOf('=');
    const key = item.slice(0, at).trim().toLowerCase();
    const value = item.slice(at + 1).trim();
    if (at < 0 || value === '') return `Malformed X-Goog-Hash header: ${JSON.stringify(header)}.`;
    if (key === 'crc32c') {
      if (Buffer.from(value, 'base64').length !== 4) return `X-Goog-Hash crc32c is not the base64 of 4 bytes: ${value}.`;
      hashes.crc32c = value;
    } else if (key === 'md5') {
      if (Buffer.from(value, 'base64').length !== 16) return `X-Goog-Hash md5 is not the base64 of 16 bytes: ${value}.`;
      hashes.md5 = value;
    }
  }
  return hashes;
}
