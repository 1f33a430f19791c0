/** `requestHeaders`: extra headers on every request of a resumable upload (tracing, x-goog-user-project). */
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError } from '../src/index.js';
import { contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

describe('requestHeaders', () => {
  it('go with every request: the open, each chunk, the recovery query and the final request', async () => {
    const name = uniqueName('headers');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503 } });
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { requestHeaders: { 'X-Trace': 'build-4711' } }));
    await pipeline([contentAt(0, 3 * K256 + 5)], stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(3 * K256 + 5));
    const records = ctx.server.requests.filter((r) => r.object === name);
    expect(new Set(records.map((r) => r.kind))).toEqual(new Set(['open', 'chunk', 'query', 'final']));
    expect(records.map((r) => r.trace)).toEqual(records.map(() => 'build-4711'));
  });

  it('refuse the protocol’s own headers and malformed names or values before any request', () => {
    const before = ctx.server.requests.length;
    const refused: Array<Record<string, string>> = [
      { 'Content-Range': 'bytes */*' },
      { authorization: 'Bearer x' },
      { 'X-Upload-Content-Length': '1' },
      { 'bad name': 'x' },
      { 'X-Ok': 'a\r\nb' },
    ];
    for (const headers of refused) {
      expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { requestHeaders: headers }))).toThrow(InvalidArgumentError);
    }
    expect(ctx.server.requests.length).toBe(before);
  });
});
