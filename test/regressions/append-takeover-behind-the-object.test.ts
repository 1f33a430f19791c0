import { describe, expect, it } from 'vitest';
import { crc32c } from '@node-rs/crc32';
import { createGcsAppendStream, SourceMismatchError, type AppendableCheckpoint } from '../../src/index.js';
import { APPEND_BUCKET, contentAt, ended, written, useLocalAppendGcs } from '../helpers.js';

// Found while writing the SIGKILL takeover test (test/append-crash-takeover.test.ts). The text below describes the
// behaviour before the fix.
// A writer that dies between the server persisting bytes and the caller storing the checkpoint of that persist
// leaves an object that holds more than its last stored checkpoint. Taking it over from that checkpoint failed with
// ProtocolError ("the server reports 1500 bytes committed but only 1000 were sent") unless the new writer's first
// write happened to reach past the object's end, in which case the bytes were skipped: whether a takeover
// worked depended on the size of its first write.

const BUCKET = APPEND_BUCKET;
const ctx = useLocalAppendGcs();
const options = ctx.options;

/** An object of 1500 persisted bytes whose writer is gone, and the checkpoint of its first 1000. */
async function objectAheadOfItsCheckpoint(name: string): Promise<AppendableCheckpoint> {
  const dead = createGcsAppendStream(options(name, { finalize: false }));
  const checkpoints: AppendableCheckpoint[] = [];
  dead.on('checkpoint', (checkpoint: AppendableCheckpoint) => checkpoints.push(checkpoint));
  await written(dead, contentAt(0, 1000));
  await dead.flush();
  await written(dead, contentAt(1000, 500));
  await dead.flush();
  dead.destroy();
  expect(ctx.server.grpc.appendable(BUCKET, name)?.size).toBe(1500);
  return checkpoints.find((checkpoint) => checkpoint.bytesCommitted === 1000)!;
}

describe('regression: a takeover from a checkpoint the object has grown past', () => {
  it.each([100, 499, 500, 501, 2000])(
    'skips the bytes the object holds beyond the checkpoint, whatever the first write (%i bytes)',
    async (first) => {
      const name = `behind/${first}.bin`;
      const resume = await objectAheadOfItsCheckpoint(name);
      const stream = createGcsAppendStream(options(name, { resume }));
      const checkpoints: AppendableCheckpoint[] = [];
      stream.on('checkpoint', (checkpoint: AppendableCheckpoint) => checkpoints.push(checkpoint));
      await written(stream, contentAt(1000, first));
      await written(stream, contentAt(1000 + first, 3000 - first));
      await ended(stream);
      const whole = contentAt(0, 4000);
      expect(ctx.server.getObject(BUCKET, name)?.data.equals(whole)).toBe(true);
      expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 4000, finalized: true });
      // Every checkpoint names bytes the object holds, with their CRC32C.
      for (const checkpoint of checkpoints) expect(checkpoint.crc32c).toBe(crc32c(whole.subarray(0, checkpoint.bytesCommitted)) >>> 0);
    },
  );

  // Found after the fix above: those skipped bytes were checked only by the whole-object CRC32C at finalization, so
  // with `finalize: false` a source that differed there (or ended before them) was spliced onto the object without an
  // error. The server reports the CRC32C of the persisted bytes with its first answer; the source is now checked
  // against it as it supplies them, before anything is appended.
  it.each([
    ['finalized', true, [3000]],
    ['left appendable', false, [3000]],
    ['left appendable, the gap supplied in small writes', false, [100, 100, 100, 100, 100, 2500]],
  ] as const)('a source that differs from those bytes is refused before it appends anything (%s)', async (label, finalize, writes) => {
    const name = `behind/differs-${label.replace(/\W+/g, '-')}.bin`;
    const resume = await objectAheadOfItsCheckpoint(name);
    const stream = createGcsAppendStream(options(name, { resume, finalize }));
    stream.on('error', () => undefined); // the failed write's callback gets it
    const different = Buffer.alloc(3000, 7);
    let at = 0;
    const error = await (async () => {
      for (const length of writes) {
        await written(stream, different.subarray(at, at + length));
        at += length;
      }
      await ended(stream);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect(error).toMatchObject({ mismatch: { kind: 'object-differs', from: 1000, to: 1500 } });
    expect((error as Error).message).toContain('bytes 1000-1499 beyond the checkpoint');
    expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 1500, finalized: false });
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, 1500))).toBe(true);
  });

  it('a source that ends before the bytes the object holds is refused, and the object is left as it is', async () => {
    const name = 'behind/ends-early.bin';
    const resume = await objectAheadOfItsCheckpoint(name);
    const stream = createGcsAppendStream(options(name, { resume, finalize: false }));
    stream.on('error', () => undefined); // the failed end's callback gets it
    const error = await written(stream, contentAt(1000, 200))
      .then(() => ended(stream))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect(error).toMatchObject({ mismatch: { kind: 'ended-early', supplied: 1200, holds: 1500 } });
    expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 1500, finalized: false });
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, 1500))).toBe(true);
  });
});
