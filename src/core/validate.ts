/**
 * Checks of single values that GCS or the platform would otherwise refuse late: bucket and object names, request
 * sizes, the window. Each throws `InvalidArgumentError` with what is wrong and what is allowed.
 */
import { InvalidArgumentError } from './errors.js';

/** Every request but the last must be a multiple of this (GCS's resumable upload alignment). */
export const CHUNK_ALIGNMENT = 256 * 1024;

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]*[a-z0-9]$/;

/**
 * Throws `InvalidArgumentError` unless `bucket` can name a bucket. With `strict` (a Google endpoint) it must follow
 * GCS's naming rules, which GCS would otherwise answer with a 400 after the session request; emulators have rules of
 * their own (most accept any name, such as `b`), so for them it only has to be one path segment.
 */
export function validateBucketName(bucket: unknown, strict = true): asserts bucket is string {
  if (typeof bucket !== 'string' || bucket.length === 0) {
    throw new InvalidArgumentError('bucket must be a non-empty string');
  }
  if (!strict) {
    // eslint-disable-next-line no-control-regex
    if (bucket.length > 222 || /[/\u0000-\u001f\u007f]/.test(bucket)) {
      throw new InvalidArgumentError(`bucket ${JSON.stringify(bucket)} must be at most 222 characters without "/" or control characters`);
    }
    return;
  }
  const maxLength = bucket.includes('.') ? 222 : 63;
  if (bucket.length < 3 || bucket.length > maxLength || !BUCKET_NAME.test(bucket)) {
    throw new InvalidArgumentError(
      `bucket ${JSON.stringify(bucket)} is not a valid bucket name: use 3-63 characters (up to 222 with dots) of ` +
        'lowercase letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
    );
  }
  if (bucket.split('.').some((part) => part.length > 63 || part.length === 0)) {
    throw new InvalidArgumentError(`bucket ${JSON.stringify(bucket)} has an empty or over-long dot-separated part`);
  }
}

/** Throws `InvalidArgumentError` unless `name` is a valid GCS object name. */
export function validateObjectName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('name must be a non-empty string');
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 1024) {
    throw new InvalidArgumentError(`name is ${bytes} UTF-8 bytes long; GCS allows at most 1024`);
  }
  if (/[\r\n]/.test(name)) {
    throw new InvalidArgumentError('name must not contain carriage return or line feed characters');
  }
  if (name === '.' || name === '..') {
    throw new InvalidArgumentError(`name must not be "${name}"`);
  }
  if (!name.isWellFormed()) {
    throw new InvalidArgumentError('name must be valid Unicode (it contains a lone surrogate)');
  }
}

/** Throws `InvalidArgumentError` unless `chunkSize` is a positive multiple of 262,144. */
export function validateChunkSize(chunkSize: unknown): asserts chunkSize is number {
  if (typeof chunkSize !== 'number' || !Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % CHUNK_ALIGNMENT !== 0) {
    throw new InvalidArgumentError(`chunkSize must be a positive multiple of ${CHUNK_ALIGNMENT} bytes, got ${String(chunkSize)}`);
  }
  if (chunkSize > 2 ** 31 - CHUNK_ALIGNMENT) {
    throw new InvalidArgumentError(`chunkSize must be below 2 GiB, got ${chunkSize}`);
  }
}
