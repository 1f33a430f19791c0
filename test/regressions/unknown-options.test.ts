import { describe, expect, it } from 'vitest';
import { createGcsAppendStream, createGcsWriteStream, InvalidArgumentError, type UploadCheckpoint } from '../../src/index.js';
import { BUCKET, expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from '../helpers.js';

// Issue 22, item 6: in plain JavaScript a misspelled option (`chunksize`, `contentTye`, `retry.bogus`) was ignored,
// and the upload ran with a default the caller did not mean. And the CLI said `--validation none` where the
// library only knew `validation: false`.

const ctx = useLocalGcs();

/** What a JavaScript caller can pass: anything. */
function writeStream(options: Record<string, unknown>): unknown {
  return createGcsWriteStream({ bucket: BUCKET, name: 'x', apiEndpoint: ctx.server.url, ...options });
}

describe('an unknown option is refused, naming the closest known one', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ chunksize: K256 }, "unknown option 'chunksize': did you mean 'chunkSize'?"],
    [{ contentTye: 'text/plain' }, "unknown option 'contentTye': did you mean 'contentType'?"],
    [{ ifGenerationMatc: 0 }, "unknown option 'ifGenerationMatc': did you mean 'ifGenerationMatch'?"],
    [{ retry: { bogus: 1 } }, "unknown option 'retry.bogus'"],
    [{ retry: { maxAttempt: 3 } }, "unknown option 'retry.maxAttempt': did you mean 'retry.maxAttempts'?"],
    [{ somethingElse: true }, "unknown option 'somethingElse'"],
  ];
  for (const [patch, message] of cases) {
    it(`createGcsWriteStream(${JSON.stringify(patch)})`, () => {
      const before = ctx.server.requests.length;
      let thrown: unknown;
      try {
        writeStream(patch);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidArgumentError);
      expect((thrown as Error).message).toBe(message);
      expect(ctx.server.requests.length).toBe(before);
    });
  }

  it('a name far from every option gets no suggestion', () => {
    expect(() => writeStream({ somethingElse: true })).toThrow(/^unknown option 'somethingElse'$/);
  });

  it('createGcsAppendStream refuses them too (and in its retry options)', () => {
    const base = { bucket: 'zonal-bucket', name: 'x', grpcEndpoint: '127.0.0.1:1' };
    const append = (options: Record<string, unknown>): unknown => createGcsAppendStream({ ...base, ...options });
    expect(() => append({ finalise: false })).toThrow(InvalidArgumentError);
    expect(() => append({ finalise: false })).toThrow("unknown option 'finalise': did you mean 'finalize'?");
    expect(() => append({ retry: { stallTimeout: 5 } })).toThrow(
      "unknown option 'retry.stallTimeout': did you mean 'retry.stallTimeoutMs'?",
    );
  });

  it('a checkpoint with fields this version does not know is still accepted (checkpoints must stay forward-compatible)', async () => {
    const name = uniqueName('checkpoint-extra-field');
    const first = createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: ctx.server.url, chunkSize: K256 });
    const checkpoint = await new Promise<UploadCheckpoint>((resolve) =>
      first.once('checkpoint', (value) => resolve(value as UploadCheckpoint)),
    );
    first.destroy();
    // Only the shape matters: a later version's extra field must not make the checkpoint unreadable.
    expect(() => writeStream({ name, resume: { ...checkpoint, addedByALaterVersion: 1 } })).not.toThrow(/unknown option/);
  });
});

describe("validation: 'none' is the CLI's --validation none, and false stays its synonym", () => {
  for (const validation of ['none', false] as const) {
    it(`validation ${JSON.stringify(validation)}: nothing is checked, so a corrupted chunk goes through`, async () => {
      const name = uniqueName(`validation-${String(validation)}`);
      const size = 2 * K256 + 7;
      ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'corrupt' } });
      const { error } = await upload(ctx.server, name, size, 64 * KiB, { validation });
      expect(error).toBeUndefined();
      expect(ctx.server.getObject(BUCKET, name)?.data.length).toBe(size);
      expect(storedDigest(ctx.server, name)).not.toBe(expectedDigest(size));
    });
  }

  it('an unknown value names every accepted one', () => {
    expect(() => writeStream({ validation: 'off' })).toThrow(
      `validation must be 'crc32c', 'md5', 'both' or 'none' (false means 'none'), got "off"`,
    );
  });
});
