/** `gs://BUCKET/OBJECT` destinations. */
import { UsageError } from './usage-error.js';

/** Where an upload goes. */
export interface GsLocation {
  bucket: string;
  name: string;
}

/**
 * Splits `gs://BUCKET/OBJECT`. The object name is taken verbatim (slashes, spaces, `#` and `?` included): object
 * names are not URL paths, so no URL parser and no percent-decoding. The library validates both parts.
 */
export function parseGsUrl(text: string): GsLocation {
  const rest = text.startsWith('gs://') ? text.slice('gs://'.length) : undefined;
  const slash = rest?.indexOf('/') ?? -1;
  if (rest === undefined || slash <= 0 || slash === rest.length - 1) {
    throw new UsageError(`${JSON.stringify(text)} is not a destination: use gs://BUCKET/OBJECT`);
  }
  return { bucket: rest.slice(0, slash), name: rest.slice(slash + 1) };
}
