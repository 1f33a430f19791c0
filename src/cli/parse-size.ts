/**
 * Sizes and durations on the command line. Sizes: `16MiB`, `256KiB`, `1.5M`, `262144`; binary units only (K = KiB):
 * chunk sizes are multiples of 256 KiB, so decimal megabytes would never be valid anyway. Durations: `500ms`, `10s`,
 * `2m`, `1.5s`, or `off`.
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

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000 };

/**
 * Parses a duration into whole milliseconds; throws `UsageError` unless it is positive. `off` (Infinity) only when
 * `allowOff`: the hint of the error lists exactly what the flag accepts.
 */
export function parseDuration(text: string, { allowOff = true }: { allowOff?: boolean } = {}): number {
  const examples = allowOff ? '500ms, 10s, 2m or off' : '200ms, 1s or 1m';
  if (/^\s*off\s*$/i.test(text)) {
    if (allowOff) return Number.POSITIVE_INFINITY;
    throw new UsageError(`${JSON.stringify(text)} is not accepted here: use a duration, e.g. ${examples}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$/i.exec(text);
  const ms = match ? Math.round(Number(match[1]) * DURATION_UNITS[match[2]!.toLowerCase()]!) : Number.NaN;
  if (!(ms >= 1)) throw new UsageError(`${JSON.stringify(text)} is not a duration: use e.g. ${examples}`);
  return ms;
}
