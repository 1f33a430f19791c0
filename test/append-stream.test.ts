/**
 * Appendable objects over gRPC, through the public API against the local server's gRPC side: readable while
 * written, finalize or not, takeover from a checkpoint, a second writer, refusals.
 */
import { randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsAppendStream, type AppendableCheckpoint, type GcsAppendableWritable } from '../src/index.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';
import { ended, written } from './helpers.js';

const BUCKET = 'zonal-bucket';
const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 6 } as const;
let server: LocalGcs;
let storage: Storage;

beforeAll(async () => {
  server = await startLocalGcs({ grpc: true });
  storage = new Storage({ apiEndpoint: server.url, projectId: 'test' });
});
afterAll(() => server.close());

async function jsonRead(name: string): Promise<Buffer> {
  const [data] = await storage.bucket(BUCKET).file(name).download();
  return data;
}

function open(name: string, extra: Partial<Parameters<typeof createGcsAppendStream>[0]> = {}): GcsAppendableWritable {
  return createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: server.grpc.address, retry: FAST_RETRY, ...extra });
}

describe('createGcsAppendStream', () => {
  it('is readable while written: a JSON read after each flush() returns exactly the persisted bytes', async () => {
    const stream = open('live.log', { contentType: 'text/plain', metadata: { source: 'ci' } });
    const generations: string[] = [];
    stream.on('generation', (g: string) => generations.push(g));
    const pieces = [Buffer.from('first line\n'), randomBytes(3 * 1024 * 1024 + 17), Buffer.from('last line\n')];
    let expected = Buffer.alloc(0);
    for (const piece of pieces) {
      await written(stream, piece);
      expected = Buffer.concat([expected, piece]);
      expect(await stream.flush()).toBe(expected.length);
      expect((await jsonRead('live.log')).equals(expected)).toBe(true);
      expect(server.grpc.appendable(BUCKET, 'live.log')).toMatchObject({ size: expected.length, finalized: false });
    }
    await ended(stream);
    expect(server.grpc.appendable(BUCKET, 'live.log')?.finalized).toBe(true);
    expect(stream.object).toMatchObject({ bucket: BUCKET, name: 'live.log', size: expected.length, generation: generations[0] });
    const [meta] = await storage.bucket(BUCKET).file('live.log').getMetadata();
    expect(meta).toMatchObject({
      contentType: 'text/plain',
      metadata: { source: 'ci' },
      size: String(expected.length),
      crc32c: stream.object?.crc32c,
    });
    expect((await jsonRead('live.log')).equals(expected)).toBe(true);
  });

  it('leaves the object appendable with finalize: false, and a checkpoint takes it over in a new stream', async () => {
    const first = open('takeover.log', { finalize: false });
    const checkpoints: AppendableCheckpoint[] = [];
    first.on('checkpoint', (c: AppendableCheckpoint) => checkpoints.push(c));
    const a = randomBytes(100_000);
    await written(first, a);
    await ended(first);
    expect(first.object).toBeUndefined();
    expect(server.grpc.appendable(BUCKET, 'takeover.log')).toMatchObject({ size: a.length, finalized: false });
    const checkpoint = checkpoints.at(-1)!;
    expect(checkpoint).toMatchObject({ version: 1, kind: 'appendable', bucket: BUCKET, name: 'takeover.log', bytesCommitted: a.length });
    expect(typeof checkpoint.writeHandle).toBe('string');

    const b = randomBytes(50_000);
    const second = open('takeover.log', { resume: JSON.parse(JSON.stringify(checkpoint)) as AppendableCheckpoint });
    await written(second, b);
    await ended(second);
    const whole = Buffer.concat([a, b]);
    expect(second.object?.size).toBe(whole.length);
    expect((await jsonRead('takeover.log')).equals(whole)).toBe(true);
  });

  it("takes over with sourceStart 'beginning', checking the source's first bytes against the checkpoint", async () => {
    const first = open('again.log', { finalize: false });
    let checkpoint: AppendableCheckpoint | undefined;
    first.on('checkpoint', (c: AppendableCheckpoint) => (checkpoint = c));
    const a = randomBytes(10_000);
    await written(first, a);
    await ended(first);
    const b = randomBytes(5_000);
    const second = open('again.log', { resume: checkpoint!, sourceStart: 'beginning' });
    await written(second, Buffer.concat([a, b]));
    await ended(second);
    expect((await jsonRead('again.log')).equals(Buffer.concat([a, b]))).toBe(true);

    const third = open('again2.log', { finalize: false });
    let c3: AppendableCheckpoint | undefined;
    third.on('checkpoint', (c: AppendableCheckpoint) => (c3 = c));
    await written(third, a);
    await ended(third);
    const wrong = open('again2.log', { resume: c3!, sourceStart: 'beginning' });
    const failed = new Promise<Error>((resolve) => wrong.once('error', resolve));
    wrong.write(randomBytes(a.length));
    expect(await failed).toMatchObject({ code: 'ERR_GCS_UPLOAD_SOURCE_MISMATCH' });
  });

  it('a second writer supersedes the first: the first fails with SupersededError and never writes again', async () => {
    const first = open('contended.log');
    let checkpoint: AppendableCheckpoint | undefined;
    first.on('checkpoint', (c: AppendableCheckpoint) => (checkpoint = c));
    const a = randomBytes(1000);
    await written(first, a);
    await first.flush();
    const second = open('contended.log', { resume: checkpoint! });
    const b = randomBytes(2000);
    await written(second, b);
    await second.flush();
    const failed = new Promise<Error>((resolve) => first.once('error', resolve));
    first.write(randomBytes(500));
    expect(await failed).toMatchObject({ name: 'SupersededError', code: 'ERR_GCS_UPLOAD_SUPERSEDED', bytesCommitted: a.length });
    await ended(second);
    expect((await jsonRead('contended.log')).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('a checkpoint of an object finalized since fails with ObjectFinalizedError, not as superseded, and adds nothing', async () => {
    const first = open('finished.log');
    let checkpoint: AppendableCheckpoint | undefined;
    first.on('checkpoint', (c: AppendableCheckpoint) => (checkpoint = c));
    const a = randomBytes(3000);
    await written(first, a);
    await first.flush();
    const stale = checkpoint!;
    await ended(first); // finalizes
    const late = open('finished.log', { resume: stale });
    const failed = new Promise<Error>((resolve) => late.once('error', resolve));
    late.write(randomBytes(100));
    const error = await failed;
    expect(error).toMatchObject({ name: 'ObjectFinalizedError', code: 'ERR_GCS_UPLOAD_OBJECT_FINALIZED' });
    expect(error.message).toMatch(/^Appending to gs:\/\/zonal-bucket\/finished\.log failed: the object is finalized/);
    expect((await jsonRead('finished.log')).equals(a)).toBe(true);
  });

  it('destroy() after end() but before finish fails with UploadAbortedError, and the object is not finalized', async () => {
    const stream = open('stopped.log');
    const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
    stream.write(randomBytes(1000));
    stream.end();
    stream.destroy();
    expect(await failed).toMatchObject({ name: 'UploadAbortedError', code: 'ERR_GCS_UPLOAD_ABORTED' });
    expect(server.grpc.appendable(BUCKET, 'stopped.log')?.finalized ?? false).toBe(false);
  });

  it('refuses to create over an existing object with ifGenerationMatch: 0', async () => {
    server.putObject(BUCKET, 'exists.log', Buffer.from('old'));
    const stream = open('exists.log', { ifGenerationMatch: 0 });
    const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
    stream.write(Buffer.from('new'));
    expect(await failed).toMatchObject({ code: 'ERR_GCS_UPLOAD_GRPC_STATUS', grpcStatus: 'FAILED_PRECONDITION' });
    expect((await jsonRead('exists.log')).toString()).toBe('old');
  });

  it('validates options before connecting', () => {
    expect(() => createGcsAppendStream({ bucket: BUCKET, name: 'x', grpcEndpoint: 'no-port' })).toThrow(/grpcEndpoint must be host:port/);
    expect(() => createGcsAppendStream({ bucket: BUCKET, name: '' })).toThrow(/name must be a non-empty string/);
    expect(() =>
      createGcsAppendStream({
        bucket: BUCKET,
        name: 'x',
        grpcEndpoint: server.grpc.address,
        resume: { version: 1 } as unknown as AppendableCheckpoint,
      }),
    ).toThrow(/not an appendable checkpoint/);
  });
});
