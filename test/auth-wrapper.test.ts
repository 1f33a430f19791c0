import { Gaxios } from 'gaxios';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, type AuthorizedClient } from '../src/index.js';
import { contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

// The session speaks only through the AuthorizedClient. A user's wrapper need not pass our request options on
// unchanged: one that forwards only what it understands (no validateStatus, responseType, signal or transport)
// still uploads correctly, through gaxios's own transport, faults and 308s included.

const ctx = useLocalGcs();
const SIZE = 5 * K256 + 3;

/** A wrapper that adds a header and forwards only url, method, headers and body. */
function narrowWrapper(seen: string[]): AuthorizedClient {
  const gaxios = new Gaxios();
  return {
    request: (options) => {
      seen.push(options.method);
      return gaxios.request({
        url: options.url,
        method: options.method,
        headers: { ...options.headers, 'x-traced': '1' },
        data: options.data,
      });
    },
  };
}

describe('an authClient wrapper that does not spread the options', () => {
  it('uploads every byte, through a transient fault and a partial commit', async () => {
    const name = uniqueName('narrow-wrapper');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503 } });
    ctx.server.inject({ match: { kind: 'chunk', offset: 3 * K256, object: name }, action: { type: 'partial', bytes: 100_000 } });
    const seen: string[] = [];
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { authClient: narrowWrapper(seen) }));
    await pipeline([contentAt(0, SIZE)], stream);
    expect(stream.object?.size).toBe(String(SIZE));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
    expect(seen[0]).toBe('POST');
    expect(seen.length).toBeGreaterThan(6);
  });
});
