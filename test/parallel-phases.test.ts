import { Gaxios } from 'gaxios';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  createGcsWriteStream,
  PermissionDeniedError,
  SourceMismatchError,
  UploadAbortedError,
  type AuthorizedClient,
  type GcsResumableWritable,
  type GcsWriteStreamOptions,
  type HttpRequest,
  type HttpResponse,
  type ParallelCheckpoint,
  type UploadWarning,
} from '../src/index.js';
import { contentAt, K256, sha256, source, streamOptions, temporaryParts, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
let buckets = 0;

/** Each test in its own bucket, so that its delete and compose fault rules and its leftovers are its own. */
function setup(
  label: string,
  extra: Partial<GcsWriteStreamOptions> = {},
): { bucket: string; name: string; options: GcsWriteStreamOptions } {
  buckets += 1;
  const bucket = `phases-${process.pid}-${buckets}`;
  const name = uniqueName(label);
  return { bucket, name, options: streamOptions(ctx.server, name, { bucket, parallel: 3, partSize: K256, ...extra }) };
}

function expectStored(bucket: string, name: string, size: number, origin = 0): void {
  const stored = ctx.server.getObject(bucket, name);
  expect(stored, `gs://${bucket}/${name}`).toBeDefined();
  expect(sha256(stored!.data)).toBe(sha256(contentAt(origin, size)));
}

async function outcome(stream: GcsResumableWritable, size: number, writeSize = 64 * 1024): Promise<unknown> {
  return pipeline(source(size, writeSize), stream).then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** A client through gaxios that calls `seen` with every request before it is sent, and `alter` on every answer. */
function observingClient(
  seen: (request: HttpRequest) => void,
  alter?: (request: HttpRequest, response: HttpResponse) => void,
): AuthorizedClient {
  const gaxios = new Gaxios();
  return {
    request: async (request) => {
      seen(request);
      const response = (await gaxios.request(request)) as unknown as HttpResponse;
      alter?.(request, response);
      return response;
    },
  };
}

const isCompose = (request: HttpRequest): boolean => request.method === 'POST' && request.url.includes('/compose');

describe('parallel uploads: the compose phase', () => {
  it('a transient fault on the final compose is retried', async () => {
    const { bucket, name, options } = setup('compose-503');
    ctx.server.inject({ match: { kind: 'compose', object: name, bucket }, action: { type: 'status', status: 503 } });
    const retries: unknown[] = [];
    const stream = createGcsWriteStream(options);
    stream.on('retry', (event) => retries.push(event));
    expect(await outcome(stream, 3 * K256 + 1)).toBeUndefined();
    expectStored(bucket, name, 3 * K256 + 1);
    expect(retries.length).toBe(1);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });

  it('a lost answer to the final compose with ifGenerationMatch 0 is recognised as this upload, not a 412', async () => {
    const { bucket, name, options } = setup('compose-lost', { ifGenerationMatch: 0 });
    ctx.server.inject({ match: { kind: 'compose', object: name, bucket }, action: { type: 'drop-response' } });
    expect(await outcome(createGcsWriteStream(options), 3 * K256 + 1)).toBeUndefined();
    expectStored(bucket, name, 3 * K256 + 1);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });

  it('a compose applied but answered 503, then refused for good on the retry: the object it made is this upload', async () => {
    // Found by `npm run soak -- --parallel --uploads 1000` (seed 20261712): the stream failed saying that no object
    // was created while the first compose's object stood there, whole.
    const { bucket, name, options } = setup('compose-applied-then-refused');
    ctx.server.inject({
      match: { kind: 'compose', object: name, bucket, times: 1 },
      action: { type: 'status', status: 503, when: 'after' },
    });
    ctx.server.inject({ match: { kind: 'compose', object: name, bucket, times: 1 }, action: { type: 'status', status: 403 } });
    const stream = createGcsWriteStream(options);
    expect(await outcome(stream, 3 * K256 + 1)).toBeUndefined();
    expectStored(bucket, name, 3 * K256 + 1);
    expect(stream.object?.generation).toBe(ctx.server.getObject(bucket, name)?.resource.generation);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });

  it('a compose refused for good fails the stream with its typed error; the parts are deleted, no object exists', async () => {
    const { bucket, name, options } = setup('compose-403');
    ctx.server.inject({ match: { kind: 'compose', object: name, bucket }, action: { type: 'status', status: 403 } });
    const error = await outcome(createGcsWriteStream(options), 3 * K256 + 1);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });

  it('a composed CRC32C that differs from the parts combined: ChecksumMismatchError, that generation deleted', async () => {
    const { bucket, name, options } = setup('compose-crc');
    const tamper = (request: HttpRequest, response: HttpResponse): void => {
      if (!isCompose(request) || response.status !== 200) return;
      const body = (typeof response.data === 'string' ? JSON.parse(response.data) : response.data) as Record<string, unknown>;
      body.crc32c = 'AAAAAA==';
      (response as { data: unknown }).data = body;
    };
    const error = await outcome(createGcsWriteStream({ ...options, authClient: observingClient(() => {}, tamper) }), 3 * K256 + 1);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as ChecksumMismatchError).failure).toMatchObject({ kind: 'stored', deleted: true });
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });

  it('an abort while intermediates are composed (tiers): no final compose, parts and intermediates deleted', async () => {
    const { bucket, name, options } = setup('abort-tiers', { parallel: 4 });
    const controller = new AbortController();
    const client = observingClient((request) => {
      if (isCompose(request)) controller.abort();
    });
    const error = await outcome(createGcsWriteStream({ ...options, signal: controller.signal, authClient: client }), 34 * K256, 256 * 1024);
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect((error as UploadAbortedError).leftovers).toEqual([]);
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
    // At least one intermediate was made and then deleted.
    expect(ctx.server.requests.some((r) => r.method === 'DELETE' && r.bucket === bucket && /\/t0-\d+$/.test(r.object ?? ''))).toBe(true);
  });

  it('destroy() once every part is stored, before the compose: no object, parts deleted', async () => {
    const { bucket, name, options } = setup('destroy-before-compose');
    const stream = createGcsWriteStream(options);
    const failed = new Promise<unknown>((resolve) => stream.once('error', resolve));
    const size = 3 * K256 + 1;
    stream.on('progress', (p) => {
      if (p.bytesCommitted === size) stream.destroy(new Error('stop'));
    });
    stream.end(contentAt(0, size));
    expect(await failed).toBeInstanceOf(UploadAbortedError);
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });
});

describe('parallel uploads: deleting the temporary objects', () => {
  it('deletes that fail after the compose: finish all the same, with stream.leftovers and a warning event', async () => {
    const { bucket, name, options } = setup('delete-fails');
    ctx.server.inject({ match: { kind: 'delete', bucket, times: Infinity }, action: { type: 'status', status: 403 } });
    const warnings: UploadWarning[] = [];
    const stream = createGcsWriteStream(options);
    stream.on('warning', (warning) => warnings.push(warning));
    const checkpoints: ParallelCheckpoint[] = [];
    stream.on('checkpoint', (c) => checkpoints.push(c as ParallelCheckpoint));
    expect(await outcome(stream, 3 * K256 + 1)).toBeUndefined();
    ctx.server.clearFaults();
    expectStored(bucket, name, 3 * K256 + 1);
    const parts = checkpoints.at(-1)!.parts.map((p) => p.name);
    expect(stream.leftovers).toEqual([...parts].sort());
    expect(temporaryParts(ctx.server, bucket)).toEqual([...parts].sort());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: 'ERR_GCS_UPLOAD_LEFTOVERS', leftovers: stream.leftovers });
    expect(warnings[0]!.cause).toBeInstanceOf(PermissionDeniedError);
  });

  it('a delete applied but answered 429, then refused on every retry: that part is gone, not a leftover', async () => {
    // Found by `npm run soak -- --parallel --uploads 1000` (seed 20261700): stream.leftovers named a part that the
    // first, lost-answered delete had removed.
    const { bucket, name, options } = setup('delete-applied-then-refused');
    ctx.server.inject({ match: { kind: 'delete', bucket, times: 1 }, action: { type: 'status', status: 429, when: 'after' } });
    ctx.server.inject({ match: { kind: 'delete', bucket, times: Infinity }, action: { type: 'status', status: 403 } });
    const stream = createGcsWriteStream(options);
    expect(await outcome(stream, 3 * K256 + 1)).toBeUndefined();
    ctx.server.clearFaults();
    expectStored(bucket, name, 3 * K256 + 1);
    expect(temporaryParts(ctx.server, bucket)).toHaveLength(3);
    expect(stream.leftovers).toEqual(temporaryParts(ctx.server, bucket));
  });

  it('a failure whose cleanup cannot delete: the error lists every temporary object left', async () => {
    const { bucket, name, options } = setup('failure-leftovers');
    ctx.server.inject({ match: { kind: 'compose', object: name, bucket }, action: { type: 'status', status: 403 } });
    ctx.server.inject({ match: { kind: 'delete', bucket, times: Infinity }, action: { type: 'status', status: 403 } });
    const error = await outcome(createGcsWriteStream(options), 3 * K256 + 1);
    ctx.server.clearFaults();
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).leftovers).toEqual(temporaryParts(ctx.server, bucket));
    expect(temporaryParts(ctx.server, bucket)).toHaveLength(4);
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
  });

  it('an abort while the temporary objects are deleted comes too late: the object exists, the rest is deleted', async () => {
    const { bucket, name, options } = setup('abort-deletes');
    const controller = new AbortController();
    const client = observingClient((request) => {
      if (request.method === 'DELETE') controller.abort();
    });
    const stream = createGcsWriteStream({ ...options, signal: controller.signal, authClient: client });
    await outcome(stream, 3 * K256 + 1);
    expectStored(bucket, name, 3 * K256 + 1);
    expect(stream.object?.generation).toBe(ctx.server.getObject(bucket, name)!.resource.generation);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });
});

describe('parallel uploads: checkpoint and resume', () => {
  /** Starts an upload of `total` bytes that stops writing after `parts` whole parts, and the checkpoint once they are stored. */
  async function abandoned(
    options: GcsWriteStreamOptions,
    parts: number,
  ): Promise<{ stream: GcsResumableWritable; checkpoint: ParallelCheckpoint }> {
    const stream = createGcsWriteStream(options);
    stream.on('error', () => {});
    const checkpoint = new Promise<ParallelCheckpoint>((resolve) => {
      stream.on('checkpoint', (c) => {
        if ((c as ParallelCheckpoint).parts.length === parts) resolve(JSON.parse(JSON.stringify(c)) as ParallelCheckpoint);
      });
    });
    // One byte of the next part closes the last of them (it is then known not to be the end).
    stream.write(contentAt(0, parts * K256 + 1));
    return { stream, checkpoint: await checkpoint };
  }

  it('resume continues without uploading the stored parts again; the source is checked against them', async () => {
    const { bucket, name, options } = setup('resume');
    const first = await abandoned(options, 4);
    const size = 6 * K256 + 7;
    const before = ctx.server.requests.length;
    const resumed = createGcsWriteStream({ ...options, resume: first.checkpoint, sourceStart: 'beginning' });
    expect(await outcome(resumed, size)).toBeUndefined();
    expectStored(bucket, name, size);
    const opens = ctx.server.requests.slice(before).filter((r) => r.kind === 'open' && r.bucket === bucket);
    // (The abandoned stream may open its own session for part 4 meanwhile: distinct names.)
    expect([...new Set(opens.map((r) => r.object!.split('/').at(-1)))].sort()).toEqual(['4', '5', '6']);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
    first.stream.destroy();
  });

  it("resume with sourceStart 'checkpoint' takes the source from the checkpoint's bytesCommitted", async () => {
    const { bucket, name, options } = setup('resume-offset');
    const first = await abandoned(options, 2);
    expect(first.checkpoint.bytesCommitted).toBe(2 * K256);
    const size = 5 * K256 + 3;
    const resumed = createGcsWriteStream({ ...options, resume: first.checkpoint });
    await pipeline([contentAt(2 * K256, size - 2 * K256)], resumed);
    expectStored(bucket, name, size);
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
    first.stream.destroy();
  });

  it('a stored part found missing on resume is uploaded again', async () => {
    const { bucket, name, options } = setup('resume-missing');
    const first = await abandoned(options, 3);
    ctx.server.deleteObject(bucket, first.checkpoint.parts[1]!.name);
    const size = 4 * K256 + 9;
    const before = ctx.server.requests.length;
    const resumed = createGcsWriteStream({ ...options, resume: first.checkpoint, sourceStart: 'beginning' });
    expect(await outcome(resumed, size)).toBeUndefined();
    expectStored(bucket, name, size);
    const opens = ctx.server.requests.slice(before).filter((r) => r.kind === 'open' && r.bucket === bucket);
    expect([...new Set(opens.map((r) => r.object!.split('/').at(-1)))].sort()).toEqual(['1', '3', '4']);
    first.stream.destroy();
  });

  it('a resumed source that differs from a stored part: SourceMismatchError, no object, the parts deleted', async () => {
    const { bucket, name, options } = setup('resume-differs');
    const first = await abandoned(options, 2);
    first.stream.destroy();
    await new Promise<void>((resolve) => first.stream.once('close', () => resolve()));
    // The first stream's cleanup deleted its parts: put them back as a crashed process would have left them.
    for (const part of first.checkpoint.parts) {
      const from = part.index * K256;
      const object = ctx.server.putObject(bucket, part.name, contentAt(from, part.size));
      part.generation = object.resource.generation!;
    }
    const resumed = createGcsWriteStream({ ...options, resume: first.checkpoint, sourceStart: 'beginning' });
    const changed = Buffer.concat([contentAt(0, K256 + 10), Buffer.from('x'), contentAt(K256 + 11, 2 * K256)]);
    const error = await pipeline([changed], resumed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceMismatchError);
    expect((error as SourceMismatchError).mismatch).toMatchObject({ kind: 'part-differs', index: 1 });
    expect(ctx.server.getObject(bucket, name)).toBeUndefined();
    expect(temporaryParts(ctx.server, bucket)).toEqual([]);
  });
});
