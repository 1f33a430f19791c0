import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsAppendStream, UploadAbortedError } from '../../src/index.js';
import { APPEND_BUCKET, contentAt, written, useLocalAppendGcs } from '../helpers.js';

// Found by the append chaos (`npm run soak -- --append --uploads 300 --seed 1`: seeds 84, 100, 112, ...). The text
// below describes the behaviour before the fix.
// destroy(err) and a failing piped source made the append stream emit that error as it was, and flush() reject with
// it: a bare Error, where every other error of the library is a GcsUploadError and the resumable stream reports
// the same stop as UploadAbortedError carrying the original as `cause`.

const BUCKET = APPEND_BUCKET;
const ctx = useLocalAppendGcs();
const options = ctx.options;

describe('regression: an append stream stopped by its caller', () => {
  it('destroy(err): UploadAbortedError carrying err, from the error event and from flush(); the flushed bytes stay', async () => {
    const name = 'stopped/destroy.log';
    const stream = createGcsAppendStream(options(name));
    const emitted = new Promise<unknown>((resolve) => stream.once('error', resolve));
    await written(stream, contentAt(0, 3000));
    expect(await stream.flush()).toBe(3000);
    await written(stream, contentAt(3000, 1000));
    const pending = stream.flush().then(
      () => undefined,
      (error: unknown) => error,
    );
    const cause = new Error('the caller stopped');
    stream.destroy(cause);
    const error = await emitted;
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect(error).toMatchObject({ code: 'ERR_GCS_UPLOAD_ABORTED', cause, bytesCommitted: 3000 });
    expect(await pending).toBeInstanceOf(UploadAbortedError);
    await expect(stream.flush()).rejects.toBe(error);
    // Nothing is finalized; the object keeps what was flushed (and maybe the last write, never a byte more).
    const held = ctx.server.getObject(BUCKET, name)?.data;
    expect(held?.equals(contentAt(0, held.length))).toBe(true);
    expect(held?.length).toBeGreaterThanOrEqual(3000);
    expect(ctx.server.grpc.appendable(BUCKET, name)?.finalized).toBe(false);
  });

  it('a piped source that fails: the stream emits UploadAbortedError carrying the source error', async () => {
    const name = 'stopped/source.log';
    const stream = createGcsAppendStream(options(name));
    const emitted = new Promise<unknown>((resolve) => stream.once('error', resolve));
    const broken = new Error('read failed');
    await pipeline(function* () {
      yield contentAt(0, 2000);
      throw broken;
    }, stream).catch(() => undefined);
    expect(await emitted).toBeInstanceOf(UploadAbortedError);
    expect(await emitted).toMatchObject({ cause: broken });
    expect(ctx.server.grpc.appendable(BUCKET, name)?.finalized ?? false).toBe(false);
  });
});
