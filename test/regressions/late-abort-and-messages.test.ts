import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, SourceMismatchError, UploadAbortedError, type UploadCheckpoint } from '../../src/index.js';
import { until } from '../child.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Defect 9 of issue 12 (the smaller ones): destroy() during the final request reported UPLOAD_ABORTED while the
// object existed, without naming it; an error's context could say "524288 of 393216 bytes committed".

const ctx = useLocalGcs();

describe('destroy() while the final answer is on its way', () => {
  it('fails with UploadAbortedError that names the existing object, and stream.object is set', async () => {
    const name = uniqueName('late-destroy');
    const size = 2 * K256 + 5;
    ctx.server.inject({ match: { kind: 'final', object: name }, action: { type: 'latency', ms: 5_000 } });
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    stream.end(contentAt(0, size));
    await until(() => ctx.server.getObject(BUCKET, name) !== undefined, 'the object', [[ctx.server.activity, 'change']]);
    stream.destroy();
    const error = await finished(stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect((error as Error).message).toMatch(/already completed: generation \d+ holds every byte written/);
    expect((error as UploadAbortedError).object).toMatchObject({ name, size: String(size) });
    expect(stream.object?.size).toBe(String(size));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });
});

describe("an error's context", () => {
  it('a resumed session that holds more than the source supplied says so plainly', async () => {
    const name = uniqueName('context-counts');
    const first = createGcsWriteStream(streamOptions(ctx.server, name));
    let checkpoint: UploadCheckpoint | undefined;
    first.on('checkpoint', (c) => {
      checkpoint = c as UploadCheckpoint;
    });
    first.write(contentAt(0, 2 * K256 + 1));
    while (checkpoint?.bytesCommitted !== 2 * K256) await once(first, 'checkpoint');
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning' }));
    const error = await pipeline([contentAt(0, 393_216)], resumed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect((error as Error).message).toContain('the session holds 524288 bytes, the source supplied 393216');
    expect((error as Error).message).not.toContain('524288 of 393216');
  });
});
