/**
 * Appendable writes under faults, against the local server's gRPC side: broken streams, transient statuses,
 * redirects, wrong offsets and checksum refusals. Assertions are on the bytes the server holds.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { useLocalAppendGcs } from './helpers.js';
import {
  createGcsAppendStream,
  CreateUnconfirmedError,
  GrpcStatusError,
  type GcsAppendableWritable,
  type GcsAppendStreamOptions,
} from '../src/index.js';

const BUCKET = 'zonal-bucket';
const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 4 } as const;
const ctx = useLocalAppendGcs();
beforeEach(() => ctx.server.grpc.clearFaults());

function open(name: string, extra: Partial<GcsAppendStreamOptions> = {}): GcsAppendableWritable {
  return createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: ctx.server.grpc.address, retry: FAST_RETRY, ...extra });
}

async function upload(stream: GcsAppendableWritable, pieces: Buffer[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    for (const piece of pieces) stream.write(piece);
    stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
  });
}

function streamsOf(name: string) {
  return ctx.server.grpc.streams.filter((s) => s.object === name);
}

describe('append stream faults', () => {
  it('recovers from a stream broken mid-way: reopens with append_object_spec and resends only the rest', async () => {
    ctx.server.grpc.inject({ match: { object: 'broken.bin', offset: 3_000_000 }, action: { type: 'break' } });
    const data = randomBytes(5 * 1024 * 1024);
    const stream = open('broken.bin');
    const retries: unknown[] = [];
    stream.on('retry', (e) => retries.push(e));
    await upload(stream, [data]);
    expect(ctx.server.getObject(BUCKET, 'broken.bin')?.data.equals(data)).toBe(true);
    expect(stream.object?.size).toBe(data.length);
    const streams = streamsOf('broken.bin');
    expect(streams.map((s) => [s.kind, s.status])).toEqual([
      ['create', 'UNAVAILABLE'],
      ['append', 'OK'],
    ]);
    // The second stream resent what the first had not persisted (from 3,000,000), not the whole object.
    expect(streams[1]!.bytesReceived).toBe(data.length - 3_000_000);
    expect(retries).toHaveLength(1);
  });

  it('retries UNAVAILABLE with the budget, and gives up when the budget is spent', async () => {
    ctx.server.grpc.inject({ match: { object: 'flaky.bin', offset: 100 }, action: { type: 'status', status: 'UNAVAILABLE' }, times: 2 });
    const data = randomBytes(200_000);
    await upload(open('flaky.bin'), [data]);
    expect(ctx.server.getObject(BUCKET, 'flaky.bin')?.data.equals(data)).toBe(true);

    // On a first message the fault refuses the create before it happens; ifGenerationMatch makes retrying it safe.
    ctx.server.grpc.inject({ match: { object: 'down.bin' }, action: { type: 'status', status: 'UNAVAILABLE' }, times: 10 });
    const stream = open('down.bin', { ifGenerationMatch: 0 });
    await expect(upload(stream, [randomBytes(1000)])).rejects.toMatchObject({ code: 'ERR_GCS_UPLOAD_RETRIES_EXHAUSTED' });
    expect(streamsOf('down.bin')).toHaveLength(4);
  });

  it.each(['DEADLINE_EXCEEDED', 'INTERNAL', 'RESOURCE_EXHAUSTED'] as const)(
    'retries %s mid-stream: reconnects and the object is byte-identical',
    async (status) => {
      const name = `transient-${status}.bin`;
      ctx.server.grpc.inject({ match: { object: name, offset: 2_500_000 }, action: { type: 'status', status } });
      const data = randomBytes(4 * 1024 * 1024);
      const stream = open(name);
      const retries: { error: { grpcStatus?: string } }[] = [];
      stream.on('retry', (e) => retries.push(e as { error: { grpcStatus?: string } }));
      await upload(stream, [data]);
      expect(ctx.server.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
      expect(stream.object?.size).toBe(data.length);
      expect(streamsOf(name).map((s) => [s.kind, s.status])).toEqual([
        ['create', status],
        ['append', 'OK'],
      ]);
      expect(retries.map((r) => r.error.grpcStatus)).toEqual([status]);
    },
  );

  it.each(['PERMISSION_DENIED', 'INVALID_ARGUMENT'] as const)(
    'fails at once on %s mid-stream, typed, without a second stream',
    async (status) => {
      const name = `fatal-${status}.bin`;
      ctx.server.grpc.inject({ match: { object: name, offset: 100_000 }, action: { type: 'status', status } });
      const stream = open(name);
      const retries: unknown[] = [];
      stream.on('retry', (e) => retries.push(e));
      const error = await upload(stream, [randomBytes(300_000)]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GrpcStatusError);
      expect(error).toMatchObject({ code: 'ERR_GCS_UPLOAD_GRPC_STATUS', grpcStatus: status, retryable: false });
      expect((error as Error).message).toContain(`gRPC status ${status}`);
      expect(retries).toEqual([]);
      expect(streamsOf(name).map((s) => s.status)).toEqual([status]);
      // Nothing past what was persisted before the refusal; the object stays unfinalized.
      expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ finalized: false });
    },
  );

  it('follows a redirect: reconnects with the routing token and write handle, without spending the budget', async () => {
    ctx.server.grpc.inject({ match: { object: 'moved.bin', offset: 50_000 }, action: { type: 'redirect', routingToken: 'zone-b' } });
    const data = randomBytes(120_000);
    const stream = open('moved.bin');
    const retries: unknown[] = [];
    stream.on('retry', (e) => retries.push(e));
    await upload(stream, [data]);
    expect(ctx.server.getObject(BUCKET, 'moved.bin')?.data.equals(data)).toBe(true);
    const streams = streamsOf('moved.bin');
    expect(streams.map((s) => [s.kind, s.status, s.routingToken])).toEqual([
      ['create', 'ABORTED', undefined],
      ['append', 'OK', 'zone-b'],
    ]);
    expect(retries).toEqual([]);
  });

  it('fails, typed, when the server refuses the whole-object checksum or an offset', async () => {
    // A non-retryable refusal surfaces as it is: the object is left unfinalized with what was persisted.
    ctx.server.grpc.inject({ match: { object: 'refused.bin' }, action: { type: 'status', status: 'PERMISSION_DENIED' } });
    await expect(upload(open('refused.bin'), [randomBytes(10)])).rejects.toMatchObject({
      code: 'ERR_GCS_UPLOAD_GRPC_STATUS',
      grpcStatus: 'PERMISSION_DENIED',
      retryable: false,
    });
  });
});

describe('a create whose first answer is lost', () => {
  async function failure(stream: GcsAppendableWritable, data: Buffer): Promise<unknown> {
    return upload(stream, [data]).then(
      () => undefined,
      (e: unknown) => e,
    );
  }

  it('with ifGenerationMatch: 0, is retried; a retry refused by its own first attempt fails, typed, and creates nothing more', async () => {
    // The server creates the object, then the stream breaks before the first response: the generation never arrives.
    ctx.server.grpc.inject({ match: { object: 'lost-answer.bin' }, action: { type: 'break' } });
    const stream = open('lost-answer.bin', { ifGenerationMatch: 0 });
    const generations: string[] = [];
    stream.on('generation', (g: string) => generations.push(g));
    const error = await failure(stream, randomBytes(50_000));
    expect(error).toBeInstanceOf(CreateUnconfirmedError);
    expect(error).toMatchObject({
      code: 'ERR_GCS_UPLOAD_CREATE_UNCONFIRMED',
      name: 'CreateUnconfirmedError',
      bucket: BUCKET,
      objectName: 'lost-answer.bin',
      uncertainty: { reason: 'precondition-failed', ifGenerationMatch: '0' },
      retryable: false,
      bytesCommitted: 0,
      cause: { grpcStatus: 'FAILED_PRECONDITION' },
    });
    expect((error as Error).message).toContain(`An unfinalized appendable object may exist at gs://${BUCKET}/lost-answer.bin`);
    expect(generations).toEqual([]);
    expect(streamsOf('lost-answer.bin').map((s) => [s.kind, s.status])).toEqual([
      ['create', 'UNAVAILABLE'],
      ['create', 'FAILED_PRECONDITION'],
    ]);
    // One generation only: the first attempt's, empty and unfinalized.
    expect(ctx.server.grpc.appendable(BUCKET, 'lost-answer.bin')).toMatchObject({ size: 0, finalized: false });
  });

  it('with ifGenerationMatch: 0, succeeds on retry when the first attempt created nothing', async () => {
    ctx.server.grpc.inject({ match: { object: 'not-created.bin' }, action: { type: 'status', status: 'UNAVAILABLE' } });
    const data = randomBytes(80_000);
    const stream = open('not-created.bin', { ifGenerationMatch: 0 });
    await upload(stream, [data]);
    expect(ctx.server.getObject(BUCKET, 'not-created.bin')?.data.equals(data)).toBe(true);
    expect(streamsOf('not-created.bin').map((s) => [s.kind, s.status])).toEqual([
      ['create', 'UNAVAILABLE'],
      ['create', 'OK'],
    ]);
  });

  it('with ifGenerationMatch: 0, a create whose first answer stalls ends the same way: timed out, retried, refused, typed', async () => {
    ctx.server.grpc.inject({ match: { object: 'silent-create.bin' }, action: { type: 'stall' } });
    const stream = createGcsAppendStream({
      bucket: BUCKET,
      name: 'silent-create.bin',
      grpcEndpoint: ctx.server.grpc.address,
      ifGenerationMatch: 0,
      retry: { ...FAST_RETRY, stallTimeoutMs: 200 },
    });
    const error = await failure(stream, randomBytes(1000));
    expect(error).toMatchObject({ code: 'ERR_GCS_UPLOAD_CREATE_UNCONFIRMED', uncertainty: { reason: 'precondition-failed' } });
    expect(streamsOf('silent-create.bin').map((s) => s.status)).toEqual(['cancelled', 'FAILED_PRECONDITION']);
  });

  it('without a precondition, is retried: the new generation replaces the unconfirmed, empty one, every byte once', async () => {
    ctx.server.grpc.inject({ match: { object: 'no-precondition.bin' }, action: { type: 'break' } });
    const stream = open('no-precondition.bin');
    const retries: unknown[] = [];
    stream.on('retry', (e) => retries.push(e));
    const data = randomBytes(80_000);
    await upload(stream, [data]);
    expect(ctx.server.getObject(BUCKET, 'no-precondition.bin')?.data.equals(data)).toBe(true);
    expect(retries).toHaveLength(1);
    expect(streamsOf('no-precondition.bin')).toHaveLength(2);
  });
});

describe('the local gRPC server refuses what GCS refuses', () => {
  /** A raw BidiWriteObject stream: sends `messages`, resolves with the status name it ended with. */
  async function raw(messages: object[]): Promise<string> {
    const { loadStorageGrpc } = await import('../src/grpc/grpc-stack.js');
    const { grpc, StorageClient } = loadStorageGrpc();
    const client = new StorageClient(ctx.server.grpc.address, grpc.credentials.createInsecure()) as unknown as {
      BidiWriteObject(): import('@grpc/grpc-js').ClientDuplexStream<object, object>;
      close(): void;
    };
    const call = client.BidiWriteObject();
    const status = new Promise<string>((resolve) => {
      call.on('data', () => undefined);
      call.on('error', (e: { code: number }) => resolve(String(Object.entries(grpc.status).find(([, v]) => Number(v) === e.code)?.[0])));
      call.on('end', () => resolve('OK'));
    });
    for (const message of messages) call.write(message);
    call.end();
    const result = await status;
    client.close();
    return result;
  }
  const create = (name: string) => ({
    write_object_spec: { resource: { bucket: `projects/_/buckets/${BUCKET}`, name }, appendable: true },
    write_offset: '0',
  });

  it('answers OUT_OF_RANGE to a write_offset past what was persisted and sent', async () => {
    const data = { content: Buffer.from('abc') };
    expect(
      await raw([create('gap.bin'), { write_offset: '0', checksummed_data: data }, { write_offset: '10', checksummed_data: data }]),
    ).toBe('OUT_OF_RANGE');
    expect(ctx.server.grpc.appendable(BUCKET, 'gap.bin')?.size).toBe(0);
  });

  it('answers INVALID_ARGUMENT to a bad per-message crc32c and to a wrong whole-object checksum', async () => {
    expect(await raw([create('crc.bin'), { write_offset: '0', checksummed_data: { content: Buffer.from('abc'), crc32c: 1234 } }])).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      await raw([
        create('whole.bin'),
        { write_offset: '0', checksummed_data: { content: Buffer.from('abc') } },
        { write_offset: '3', finish_write: true, object_checksums: { crc32c: 1 } },
      ]),
    ).toBe('INVALID_ARGUMENT');
    expect(ctx.server.grpc.appendable(BUCKET, 'whole.bin')).toMatchObject({ finalized: false });
  });
});
