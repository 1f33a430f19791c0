import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, InvalidArgumentError, SourceMismatchError, type UploadCheckpoint } from '../../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Defect 3 of issue 12. With `validation: false` a checkpoint carried no CRC32C, so resuming with
// `sourceStart: 'beginning'` and another file skipped its first bytes unchecked and stored the old prefix plus the
// new tail. The check of the source's first bytes must not depend on the validation mode.

const ctx = useLocalGcs();
const SIZE = 5 * K256 + 99;

/** Uploads the first 3 chunks with validation off and returns the checkpoint at 3 × 256 KiB (then "crashes"). */
async function partialUpload(name: string): Promise<UploadCheckpoint> {
  const stream = createGcsWriteStream(streamOptions(ctx.server, name, { validation: false }));
  let checkpoint: UploadCheckpoint | undefined;
  stream.on('checkpoint', (c) => {
    checkpoint = JSON.parse(JSON.stringify(c)) as UploadCheckpoint;
  });
  stream.write(contentAt(0, 3 * K256 + 1));
  while (checkpoint?.bytesCommitted !== 3 * K256) await once(stream, 'checkpoint');
  return checkpoint;
}

describe('resuming with validation off', () => {
  it('checkpoints still carry the CRC32C of the committed prefix', async () => {
    const checkpoint = await partialUpload(uniqueName('splice-crc'));
    expect(typeof checkpoint.crc32c).toBe('number');
  });

  it('another source from the beginning is refused, not spliced onto the committed bytes', async () => {
    const name = uniqueName('splice-other');
    const checkpoint = await partialUpload(name);
    const other = Buffer.alloc(SIZE, 0x42);
    const resumed = createGcsWriteStream(
      streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning', validation: false }),
    );
    const error = await pipeline([other], resumed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });

  it('the same source from the beginning completes the object', async () => {
    const name = uniqueName('splice-same');
    const checkpoint = await partialUpload(name);
    const resumed = createGcsWriteStream(
      streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning', validation: false }),
    );
    await pipeline([contentAt(0, SIZE)], resumed);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('a checkpoint without crc32c cannot resume from the beginning: refused before any request', async () => {
    const name = uniqueName('splice-no-crc');
    const bare: UploadCheckpoint = { ...(await partialUpload(name)) };
    delete bare.crc32c;
    const before = ctx.server.requests.length;
    expect(() =>
      createGcsWriteStream(streamOptions(ctx.server, name, { resume: bare, sourceStart: 'beginning', validation: false })),
    ).toThrow(InvalidArgumentError);
    expect(ctx.server.requests.length).toBe(before);
  });
});
