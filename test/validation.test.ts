import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, type GcsWriteStreamOptions } from '../src/index.js';
import { BUCKET, K256, KiB, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const GOOGLE = 'https://storage.googleapis.com';

describe('bad input fails fast, before any request', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['chunkSize not a multiple of 256 KiB', { chunkSize: 1_000_000 }, /chunkSize must be a positive multiple of 262144 bytes, got 1000000/],
    ['chunkSize zero', { chunkSize: 0 }, /chunkSize/],
    ['chunkSize negative', { chunkSize: -262144 }, /chunkSize/],
    ['chunkSize fractional', { chunkSize: 262144.5 }, /chunkSize/],
    ['empty bucket', { bucket: '' }, /bucket must be a non-empty string/],
    // GCS's naming rules apply against Google's endpoint (nothing is sent: validation fails first)...
    ['invalid bucket, Google endpoint', { bucket: 'Bad_Bucket!', apiEndpoint: GOOGLE }, /not a valid bucket name/],
    ['bucket too short, Google endpoint', { bucket: 'ab', apiEndpoint: GOOGLE }, /not a valid bucket name/],
    // ...an emulator only needs one path segment.
    ['bucket with a slash, emulator', { bucket: 'a/b' }, /without "\/" or control characters/],
    ['bucket with a control character, emulator', { bucket: 'a\u0001b' }, /without "\/" or control characters/],
    ['empty name', { name: '' }, /name must be a non-empty string/],
    ['name too long', { name: 'é'.repeat(513) }, /1026 UTF-8 bytes/],
    ['name with LF', { name: 'a\nb' }, /carriage return or line feed/],
    ['name with CR', { name: 'a\rb' }, /carriage return or line feed/],
    ['name "."', { name: '.' }, /must not be "."/],
    ['name ".."', { name: '..' }, /must not be ".."/],
    ['bufferChunks 0', { bufferChunks: 0 }, /bufferChunks/],
    ['bad retry', { retry: { maxAttempts: 0 } }, /retry.maxAttempts/],
    ['bad validation', { validation: 'sha1' }, /validation/],
    ['bad endpoint', { apiEndpoint: 'ftp://x' }, /http or https/],
    ['bad precondition', { ifGenerationMatch: 'abc' }, /ifGenerationMatch/],
  ];
  for (const [label, patch, message] of cases) {
    it(label, () => {
      const before = ctx.server.requests.length;
      const options = { bucket: BUCKET, name: 'x', apiEndpoint: ctx.server.url, ...patch } as unknown as GcsWriteStreamOptions;
      expect(() => createGcsWriteStream(options)).toThrow(InvalidArgumentError);
      expect(() => createGcsWriteStream(options)).toThrow(message);
      expect(ctx.server.requests.length).toBe(before);
    });
  }

  it('an emulator takes bucket names GCS would refuse, such as "b"', async () => {
    const { error } = await upload(ctx.server, 'one-letter-bucket', 3 * K256 + 5, 64 * KiB, { bucket: 'b' });
    expect(error).toBeUndefined();
    expect(ctx.server.getObject('b', 'one-letter-bucket')?.data.length).toBe(3 * K256 + 5);
  });

  it('a name of exactly 1024 UTF-8 bytes is accepted', () => {
    const stream = createGcsWriteStream({ bucket: BUCKET, name: 'a'.repeat(1024), apiEndpoint: ctx.server.url });
    stream.destroy();
  });

  it('writes that are not Buffer, Uint8Array or string are rejected', () => {
    const stream = createGcsWriteStream({ bucket: BUCKET, name: 'typed-writes', apiEndpoint: ctx.server.url });
    stream.on('error', () => undefined);
    expect(() => stream.write(42)).toThrow(TypeError);
    expect(() => stream.write({})).toThrow(TypeError);
    stream.destroy();
  });
});
