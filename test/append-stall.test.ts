/**
 * The stall timeout of append streams: a `BidiWriteObject` stream that goes silent while the client waits for an
 * answer (a flush's persisted size, the finish's object, a takeover's first response) is cancelled after
 * `retry.stallTimeoutMs` and retried like UNAVAILABLE. Assertions are on the bytes the server holds.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createGcsAppendStream, type GcsAppendableWritable, type RetryEvent } from '../src/index.js';
import { ended, useLocalAppendGcs, written } from './helpers.js';

const BUCKET = 'zonal-bucket';
const RETRY = { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 3, stallTimeoutMs: 300 } as const;
const ctx = useLocalAppendGcs();
beforeEach(() => ctx.server.grpc.clearFaults());

function open(name: string): { stream: GcsAppendableWritable; retries: RetryEvent[] } {
  const stream = createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: ctx.server.grpc.address, retry: RETRY });
  const retries: RetryEvent[] = [];
  stream.on('retry', (event: RetryEvent) => retries.push(event));
  return { stream, retries };
}

function streamsOf(name: string) {
  return ctx.server.grpc.streams.filter((s) => s.object === name).map((s) => [s.kind, s.status, s.fault]);
}

describe('append stream stall timeout', () => {
  it("recovers when the server goes silent before a flush's answer: reconnects, reconciles, resends the rest", async () => {
    // The server persists the first 1,000,000 bytes, then stops reading and answering.
    ctx.server.grpc.inject({ match: { object: 'silent-flush.bin', offset: 1_000_000 }, action: { type: 'stall' } });
    const { stream, retries } = open('silent-flush.bin');
    const a = randomBytes(3 * 1024 * 1024);
    await written(stream, a);
    expect(await stream.flush()).toBe(a.length);
    const b = randomBytes(1000);
    await written(stream, b);
    await ended(stream);
    const whole = Buffer.concat([a, b]);
    expect(ctx.server.getObject(BUCKET, 'silent-flush.bin')?.data.equals(whole)).toBe(true);
    expect(stream.object?.size).toBe(whole.length);
    // The stalled stream first, the finishing one last. A loaded machine can stretch an ordinary answer past the
    // 300 ms stall timeout too: such streams are cancelled without a fault and retried the same way.
    const streams = streamsOf('silent-flush.bin');
    expect(streams[0]).toEqual(['create', 'cancelled', 'stall']);
    expect(streams.at(-1)).toEqual(['append', 'OK', undefined]);
    expect(streams.slice(1, -1).every(([kind, , fault]) => kind === 'append' && fault === undefined)).toBe(true);
    expect(new Set(retries.map((r) => r.error.code))).toEqual(new Set(['ERR_GCS_UPLOAD_REQUEST_TIMEOUT']));
  });

  it("recovers when the finish's answer never comes", async () => {
    const data = randomBytes(200_000);
    ctx.server.grpc.inject({ match: { object: 'silent-finish.bin', offset: 150_000 }, action: { type: 'stall' } });
    const { stream, retries } = open('silent-finish.bin');
    await written(stream, data);
    await ended(stream);
    expect(ctx.server.getObject(BUCKET, 'silent-finish.bin')?.data.equals(data)).toBe(true);
    expect(retries).toHaveLength(1);
  });

  it("recovers when a reconnect's first response never comes, and gives up once the budget is spent", async () => {
    ctx.server.grpc.inject({ match: { object: 'silent-reopen.bin', offset: 100_000 }, action: { type: 'break' } });
    ctx.server.grpc.inject({
      match: { object: 'silent-reopen.bin', stream: ctx.server.grpc.streams.length + 2 },
      action: { type: 'stall' },
    });
    const data = randomBytes(300_000);
    const { stream, retries } = open('silent-reopen.bin');
    await written(stream, data);
    await ended(stream);
    expect(ctx.server.getObject(BUCKET, 'silent-reopen.bin')?.data.equals(data)).toBe(true);
    expect(streamsOf('silent-reopen.bin').map(([kind, status]) => [kind, status])).toEqual([
      ['create', 'UNAVAILABLE'],
      ['append', 'cancelled'],
      ['append', 'OK'],
    ]);
    expect(retries.map((r) => r.error.code)).toEqual(['ERR_GCS_UPLOAD_GRPC_STATUS', 'ERR_GCS_UPLOAD_REQUEST_TIMEOUT']);

    // Stalls count against the budget like any transient failure (none of them persists a byte).
    ctx.server.grpc.inject({ match: { object: 'always-silent.bin', offset: 0 }, action: { type: 'stall' }, times: 10 });
    const never = open('always-silent.bin').stream;
    never.on('error', () => undefined);
    await written(never, randomBytes(1000));
    await expect(never.flush()).rejects.toMatchObject({
      code: 'ERR_GCS_UPLOAD_RETRIES_EXHAUSTED',
      cause: { code: 'ERR_GCS_UPLOAD_REQUEST_TIMEOUT' },
    });
    expect(ctx.server.grpc.streams.filter((s) => s.object === 'always-silent.bin')).toHaveLength(RETRY.maxAttempts);
  });
});
