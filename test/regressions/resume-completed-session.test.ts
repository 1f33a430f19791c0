import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, SourceMismatchError, UploadAbortedError, type UploadCheckpoint } from '../../src/index.js';
import { contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Defect 2 of issue 12. Resuming a session that had already completed, with a source that does not match its
// object, deleted the stored object (it is not the resuming stream's to delete: the user asked to continue an
// upload, not to replace an object); so did destroy() during such a resume.

const ctx = useLocalGcs();
const SIZE = 4 * K256 + 321;

/** Uploads the whole test object and returns a checkpoint taken half-way: its session has since completed. */
async function completedUpload(name: string): Promise<UploadCheckpoint> {
  const stream = createGcsWriteStream(streamOptions(ctx.server, name));
  let checkpoint: UploadCheckpoint | undefined;
  stream.on('checkpoint', (c) => {
    if (c.bytesCommitted === 2 * K256) checkpoint = JSON.parse(JSON.stringify(c)) as UploadCheckpoint;
  });
  await pipeline([contentAt(0, SIZE)], stream);
  expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  return checkpoint!;
}

/** The test content with its tail after `from` replaced. */
function alteredTail(from: number): Buffer {
  const bytes = contentAt(0, SIZE);
  bytes.fill(0x5a, from);
  return bytes;
}

describe('resuming a session that already completed', () => {
  it('with the same source: finishes with the stored object', async () => {
    const name = uniqueName('resume-done-same');
    const checkpoint = await completedUpload(name);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning' }));
    await pipeline([contentAt(0, SIZE)], resumed);
    expect(resumed.object?.size).toBe(String(SIZE));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  for (const validation of ['crc32c', false] as const) {
    it(`with a different tail (validation ${String(validation)}): SourceMismatchError, the stored object stays`, async () => {
      const name = uniqueName('resume-done-other');
      const checkpoint = await completedUpload(name);
      const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning', validation }));
      const error = await pipeline([alteredTail(3 * K256)], resumed).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SourceMismatchError);
      expect((error as Error).message).toMatch(/already completed.*left as it is/);
      expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
    });
  }

  it('with a source that starts at the checkpoint and is longer: SourceMismatchError, the stored object stays', async () => {
    const name = uniqueName('resume-done-longer');
    const checkpoint = await completedUpload(name);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint }));
    const error = await pipeline([contentAt(checkpoint.bytesCommitted, SIZE + 10 - checkpoint.bytesCommitted)], resumed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('destroy() during the resume leaves the stored object alone', async () => {
    const name = uniqueName('resume-done-destroy');
    const checkpoint = await completedUpload(name);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning' }));
    resumed.on('error', () => undefined);
    await new Promise<void>((resolve, reject) =>
      resumed.write(alteredTail(3 * K256).subarray(0, 3 * K256 + 5), (e) => (e ? reject(e) : resolve())),
    );
    resumed.destroy(new Error('the user gave up'));
    const error = await finished(resumed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });
});
