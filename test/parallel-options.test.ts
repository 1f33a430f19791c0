import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, type GcsWriteStreamOptions } from '../src/index.js';

const base: GcsWriteStreamOptions = { bucket: 'test-bucket', name: 'x', apiEndpoint: 'http://127.0.0.1:1' };

function refused(extra: Partial<GcsWriteStreamOptions>): InvalidArgumentError {
  try {
    createGcsWriteStream({ ...base, ...extra }).destroy();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }
  throw new Error(`accepted ${JSON.stringify(extra)}`);
}

describe('parallel options', () => {
  it('refuse a parallel that is not an integer >= 1', () => {
    for (const parallel of [0, -1, 1.5, Number.NaN]) expect(refused({ parallel }).message).toMatch(/parallel must be an integer >= 1/);
  });

  it('refuse a partSize that is not a positive multiple of 256 KiB', () => {
    for (const partSize of [0, 1000, 256 * 1024 + 1, -256 * 1024]) {
      expect(refused({ parallel: 2, partSize }).message).toMatch(/partSize must be a positive multiple of 262144/);
    }
  });

  it('refuse MD5 validation and maxUncommittedMs with parallel > 1, which a composite cannot honour', () => {
    expect(refused({ parallel: 2, validation: 'md5' }).message).toMatch(/no MD5/);
    expect(refused({ parallel: 2, validation: 'both' }).message).toMatch(/no MD5/);
    expect(refused({ parallel: 2, maxUncommittedMs: 1000 }).message).toMatch(/maxUncommittedMs/);
  });

  it('refuse preconditions a compose cannot check', () => {
    expect(refused({ parallel: 2, ifGenerationNotMatch: 3 }).message).toMatch(/ifGenerationNotMatch/);
  });

  it('accept MD5 and maxUncommittedMs with parallel 1 (one session, as always)', () => {
    createGcsWriteStream({ ...base, parallel: 1, validation: 'md5', maxUncommittedMs: 1000 }).destroy();
  });

  it('refuse a partPrefix that leads to invalid object names', () => {
    expect(refused({ parallel: 2, partPrefix: 'a\nb/' }).message).toMatch(/partPrefix/);
  });

  it('flush() rejects with InvalidArgumentError: nothing is visible before the compose', async () => {
    const stream = createGcsWriteStream({ ...base, parallel: 2 });
    await expect(stream.flush()).rejects.toBeInstanceOf(InvalidArgumentError);
    stream.destroy();
  });

  it('refuse a single-session checkpoint with parallel > 1 and a parallel checkpoint without it', () => {
    const single = {
      version: 1 as const,
      uploadUri: 'http://127.0.0.1:1/s',
      bucket: 'test-bucket',
      name: 'x',
      bytesCommitted: 0,
      crc32c: 0,
    };
    expect(refused({ parallel: 2, resume: single }).message).toMatch(/single session/);
    const parallel = {
      version: 1 as const,
      kind: 'parallel' as const,
      uploadId: 'AAAAAAAAAAAAAAAAAAAAAA',
      bucket: 'test-bucket',
      name: 'x',
      partPrefix: 'gcs-stream-parts/',
      partSize: 256 * 1024,
      bytesCommitted: 0,
      parts: [],
    };
    expect(refused({ resume: parallel }).message).toMatch(/parallel > 1/);
    expect(refused({ parallel: 2, resume: parallel, partSize: 512 * 1024 }).message).toMatch(/partSize/);
  });
});
