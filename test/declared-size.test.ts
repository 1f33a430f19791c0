import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, SizeMismatchError } from '../src/index.js';
import { expectedDigest, K256, KiB, storedDigest, streamOptions, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 100;

function sessionOf(name: string) {
  return ctx.server.listSessions().find((s) => s.name === name);
}

describe('a declared size', () => {
  it('is announced to GCS (X-Upload-Content-Length) and the object is stored', async () => {
    const name = uniqueName('size-exact');
    const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { size: SIZE });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
    expect(sessionOf(name)?.declaredSize).toBe(SIZE);
  });

  it('a source that writes more fails with SizeMismatchError, the session is cancelled, no byte beyond it is sent', async () => {
    const name = uniqueName('size-more');
    const { error } = await upload(ctx.server, name, SIZE + 1, 64 * KiB, { size: SIZE });
    expect(error).toBeInstanceOf(SizeMismatchError);
    expect((error as Error).message).toMatch(/wrote more than the declared size of 786532 bytes/);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
    expect(sessionOf(name)?.state).toBe('cancelled');
    const sent = ctx.server.requests
      .filter((r) => r.object === name)
      .reduce((sum, r) => sum + (r.kind === 'open' ? 0 : r.bytesReceived), 0);
    expect(sent).toBeLessThanOrEqual(SIZE);
  });

  it('a source that ends short fails with SizeMismatchError before anything is finalized', async () => {
    const name = uniqueName('size-short');
    const { error } = await upload(ctx.server, name, SIZE - 1, 64 * KiB, { size: SIZE });
    expect(error).toBeInstanceOf(SizeMismatchError);
    expect((error as Error).message).toMatch(/ended after 786531 of the declared 786532 bytes/);
    expect((error as SizeMismatchError).resumable).toBe(false);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
    expect(sessionOf(name)?.state).toBe('cancelled');
  });

  it('zero: an empty object', async () => {
    const name = uniqueName('size-zero');
    const { error } = await upload(ctx.server, name, 0, 64 * KiB, { size: 0 });
    expect(error).toBeUndefined();
    expect(ctx.server.getObject('test-bucket', name)?.data.length).toBe(0);
  });

  for (const bad of [-1, 1.5, Number.NaN, '100']) {
    it(`rejects ${JSON.stringify(bad)} before any request`, () => {
      const before = ctx.server.requests.length;
      expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { size: bad as number }))).toThrow(InvalidArgumentError);
      expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { size: bad as number }))).toThrow(
        /size must be a non-negative integer/,
      );
      expect(ctx.server.requests.length).toBe(before);
    });
  }
});
