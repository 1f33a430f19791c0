import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  createGcsWriteStream,
  InvalidArgumentError,
  SessionExpiredError,
  SourceMismatchError,
  type UploadCheckpoint,
} from '../src/index.js';
import { contentAt, expectedDigest, K256, source, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const SIZE = 6 * K256 + 777;

/** Uploads the first `upTo` bytes, collects checkpoints, then "crashes": the stream is abandoned, not destroyed. */
async function partialUpload(name: string, upTo: number): Promise<UploadCheckpoint[]> {
  const checkpoints: UploadCheckpoint[] = [];
  const stream = createGcsWriteStream(streamOptions(ctx.server, name));
  stream.on('checkpoint', (c) => checkpoints.push(JSON.parse(JSON.stringify(c)) as UploadCheckpoint));
  // One byte past the last full chunk proves it is not the last, so it goes out (a full final chunk is held).
  stream.write(contentAt(0, upTo + 1));
  while (checkpoints.at(-1)?.bytesCommitted !== Math.floor(upTo / K256) * K256) await once(stream, 'checkpoint');
  return checkpoints;
}

/** A source of the test content from `from` to `size`. */
function sourceFrom(from: number, size: number) {
  let pos = from;
  return (function* () {
    while (pos < size) {
      const n = Math.min(50_000, size - pos);
      yield contentAt(pos, n);
      pos += n;
    }
  })();
}

describe('checkpoints and resume', () => {
  it('emits a JSON-serializable checkpoint after the session opens and after every commit', async () => {
    const name = uniqueName('checkpoints');
    const checkpoints: UploadCheckpoint[] = [];
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    stream.on('checkpoint', (c) => checkpoints.push(c as UploadCheckpoint));
    await pipeline(source(3 * K256 + 5, 40_000), stream);
    expect(checkpoints[0]).toMatchObject({ version: 1, bucket: 'test-bucket', name, bytesCommitted: 0, crc32c: 0 });
    expect(checkpoints.map((c) => c.bytesCommitted)).toEqual([0, K256, 2 * K256, 3 * K256]);
    expect(JSON.parse(JSON.stringify(checkpoints[2]))).toEqual(checkpoints[2]);
  });

  it('resumes from a checkpoint with a source that starts at the committed offset', async () => {
    const name = uniqueName('resume-checkpoint');
    const checkpoint = (await partialUpload(name, 3 * K256 + 100)).at(-1)!;
    expect(checkpoint.bytesCommitted).toBe(3 * K256);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint }));
    await pipeline(sourceFrom(checkpoint.bytesCommitted, SIZE), resumed);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
    expect(resumed.object?.size).toBe(String(SIZE));
  });

  it("resumes with sourceStart 'beginning': skips what the session holds, checksum intact", async () => {
    const name = uniqueName('resume-beginning');
    const checkpoint = (await partialUpload(name, 2 * K256 + 10)).at(-1)!;
    const resumed = createGcsWriteStream(
      streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning', validation: 'both' }),
    );
    await pipeline(sourceFrom(0, SIZE), resumed);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('an older checkpoint still works: the session holds more than it says, the extra bytes are skipped', async () => {
    const name = uniqueName('resume-stale');
    const checkpoints = await partialUpload(name, 4 * K256 + 10);
    const stale = checkpoints.find((c) => c.bytesCommitted === K256)!;
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: stale }));
    await pipeline(sourceFrom(stale.bytesCommitted, SIZE), resumed);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('only bucket and name from the checkpoint are needed', async () => {
    const name = uniqueName('resume-minimal');
    const checkpoint = (await partialUpload(name, K256 + 1)).at(-1)!;
    const resumed = createGcsWriteStream({ resume: checkpoint, apiEndpoint: ctx.server.url, chunkSize: K256 });
    await pipeline(sourceFrom(checkpoint.bytesCommitted, SIZE), resumed);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('resuming a session that already completed checks the source against the object and finishes', async () => {
    const name = uniqueName('resume-complete');
    const checkpoints: UploadCheckpoint[] = [];
    const first = createGcsWriteStream(streamOptions(ctx.server, name));
    first.on('checkpoint', (c) => checkpoints.push(c as UploadCheckpoint));
    await pipeline(source(SIZE, 60_000), first);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoints.at(-1)!, sourceStart: 'beginning' }));
    await pipeline(sourceFrom(0, SIZE), resumed);
    expect(resumed.object?.generation).toBe(first.object?.generation);
  });

  it('a source different from the one uploaded before is refused (SourceMismatchError), nothing finalized', async () => {
    const name = uniqueName('resume-other-source');
    const checkpoint = (await partialUpload(name, 2 * K256)).at(-1)!;
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint, sourceStart: 'beginning' }));
    const other = (function* () {
      yield Buffer.alloc(SIZE, 1);
    })();
    await expect(pipeline(other, resumed)).rejects.toBeInstanceOf(SourceMismatchError);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
  });

  it('a source shorter than what the session holds is refused', async () => {
    const name = uniqueName('resume-short');
    const checkpoints = await partialUpload(name, 3 * K256);
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoints[1]!, sourceStart: 'beginning' }));
    await expect(pipeline(sourceFrom(0, K256), resumed)).rejects.toThrow(
      /source ended after 262144 bytes, but the session already holds 786432/,
    );
  });

  it('an expired session says so', async () => {
    const name = uniqueName('resume-expired');
    const checkpoint = (await partialUpload(name, K256)).at(-1)!;
    ctx.server.inject({ match: { kind: 'query', object: name }, action: { type: 'expire', status: 404 } });
    const resumed = createGcsWriteStream(streamOptions(ctx.server, name, { resume: checkpoint }));
    const error = await pipeline(sourceFrom(K256, SIZE), resumed).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionExpiredError);
    expect((error as Error).message).toMatch(/no longer exists \(HTTP 404: expired or unknown\); start a new upload/);
  });

  it('a checkpoint for another object, a bad one, or MD5 continued from a checkpoint are rejected up front', () => {
    const checkpoint: UploadCheckpoint = {
      version: 1,
      uploadUri: `${ctx.server.url}/upload/x?upload_id=1`,
      bucket: 'test-bucket',
      name: 'a',
      bytesCommitted: 0,
      crc32c: 0,
    };
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'b', { resume: checkpoint }))).toThrow(
      /checkpoint is for gs:\/\/test-bucket\/a/,
    );
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'a', { resume: { ...checkpoint, version: 2 } as never }))).toThrow(
      InvalidArgumentError,
    );
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'a', { resume: checkpoint, validation: 'md5' }))).toThrow(
      /MD5 cannot be continued/,
    );
    expect(() =>
      createGcsWriteStream({ resume: { ...checkpoint, uploadUri: 'https://elsewhere.example/x' }, apiEndpoint: ctx.server.url }),
    ).toThrow(/another origin/);
  });
});
