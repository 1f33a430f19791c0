import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { ChecksumMismatchError, type Validation } from '../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 4321;

function crcBase64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data) >>> 0);
  return out.toString('base64');
}

describe('integrity before visibility', () => {
  for (const at of ['a middle chunk', 'the final chunk'] as const) {
    it(`bytes corrupted in transit in ${at} are refused by the server: ChecksumMismatchError, no object`, async () => {
      const name = uniqueName('corrupt');
      const match =
        at === 'the final chunk' ? { kind: 'final' as const, object: name } : { kind: 'chunk' as const, offset: K256, object: name };
      ctx.server.inject({ match, action: { type: 'corrupt', at: 100 } });
      const { error } = await upload(ctx.server, name, SIZE, 64 * KiB);
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect((error as ChecksumMismatchError).code).toBe('ERR_GCS_UPLOAD_CHECKSUM_MISMATCH');
      expect(storedDigest(ctx.server, name)).toBeUndefined();
    });
  }

  it('an existing object survives a corrupted replacement untouched', async () => {
    const name = uniqueName('corrupt-existing');
    const previous = ctx.server.putObject(BUCKET, name, Buffer.from('previous generation'));
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'corrupt' } });
    const { error } = await upload(ctx.server, name, SIZE, 64 * KiB);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    const now = ctx.server.getObject(BUCKET, name);
    expect(now?.resource.generation).toBe(previous.resource.generation);
    expect(now?.data.toString()).toBe('previous generation');
  });

  it('with validation: false the corruption goes through (what validation protects against)', async () => {
    const name = uniqueName('corrupt-unchecked');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'corrupt' } });
    const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { validation: false });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).not.toBe(expectedDigest(SIZE));
  });

  const modes: Validation[] = ['crc32c', 'md5', 'both'];
  for (const validation of modes) {
    it(`validation '${validation}': the final request carries the right X-Goog-Hash, and the stored object matches`, async () => {
      const name = uniqueName(`validation-${validation}`);
      const { error, stream } = await upload(ctx.server, name, SIZE, 10_000, { validation });
      expect(error).toBeUndefined();
      const data = contentAt(0, SIZE);
      expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
      expect(stream.object?.crc32c).toBe(crcBase64(data));
      expect(stream.object?.md5Hash).toBe(createHash('md5').update(data).digest('base64'));
    });
    it(`validation '${validation}' detects corruption of the first chunk`, async () => {
      const name = uniqueName(`validation-corrupt-${validation}`);
      ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'corrupt', at: 5 } });
      const { error } = await upload(ctx.server, name, SIZE, 10_000, { validation });
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect(storedDigest(ctx.server, name)).toBeUndefined();
    });
  }
});
