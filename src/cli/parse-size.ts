/**
 * Sizes on the command line: `16MiB`, `256KiB`, `1.5M`, `262144`. Binary units only (K = KiB): chunk sizes are
 * multiples of 256 KiB, so decimal megabytes would never be valid anyway.
 */
import { UsageError } from './usage-error.js';

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses a size in bytes; throws `UsageError` unless it is a positive whole number of bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new UsageError(`${JSON.stringify(text)} is not a size: use e.g. 16MiB, 256KiB, 1GiB, 8M or 262144 (bytes)`);
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`${JSON.stringify(text)} is not a positive whole number of bytes`);
  }
  return bytes;
}
