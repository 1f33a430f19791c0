/** `gs://BUCKET/OBJECT` URLs: the destination of `cp`, the source of `cat`. */
import { UsageError } from './usage-error.js';

/** An object: where an upload goes, or what is read. */
export interface GsLocation {
  bucket: string;
  name: string;
}

/**
 * Splits `gs://BUCKET/OBJECT`. The object name is taken verbatim (slashes, spaces, `#` and `?` included): object
 * names are not URL paths, so no URL parser and no percent-decoding. The library validates both parts. `role` words
 * the message of a URL that is not one (`"x" is not a destination`; a bucket alone is never called either).
 */
export function parseGsUrl(text: string, role: 'source' | 'destination'): GsLocation {
  const rest = text.startsWith('gs://') ? text.slice('gs://'.length) : undefined;
  const slash = rest?.indexOf('/') ?? -1;
  if (rest !== undefined && rest.length > 0 && (slash === -1 || slash === rest.length - 1) && !rest.startsWith('/')) {
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    throw new UsageError(`${JSON.stringify(text)} names the bucket ${bucket}, not an object: use gs://BUCKET/OBJECT`);
  }
  if (rest === undefined || slash <= 0) {
    throw new UsageError(`${JSON.stringify(text)} is not a ${role}: use gs://BUCKET/OBJECT`);
  }
  return { bucket: rest.slice(0, slash), name: rest.slice(slash + 1) };
}
