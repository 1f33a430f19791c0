/**
 * createGcsReadStream under the local server's read faults (break, stall, transient and permanent statuses,
 * redirect, a corrupted message) and with a slow consumer: every byte once, resumed at the first byte not delivered,
 * and the server never more than a bounded amount ahead of what the consumer read.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  GrpcStatusError,
  READ_HIGH_WATER_MARK,
  READ_RANGE_BYTES,
  type GcsReadStreamOptions,
  type RetryEvent,
} from '../src/index.js';
import type { GrpcFaultRule } from '../src/testing/index.js';
import { APPEND_BUCKET, MiB, useLocalAppendGcs } from './helpers.js';
import { openReader, readAll, serverState } from './read-helpers.js';

const ctx = useLocalAppendGcs();
const SIZE = 9 * MiB + 321;

/** Reads a fresh 9 MiB object with `rule` injected; returns what arrived, the retries, and the streams opened. */
async function readWith(name: string, rule: GrpcFaultRule, extra: Partial<GcsReadStreamOptions> = {}) {
  const data = randomBytes(SIZE);
  ctx.server.putObject(APPEND_BUCKET, name, data);
  const before = ctx.server.grpc.reads.streams.length;
  const faults = ctx.server.grpc.faultsInjected;
  ctx.server.grpc.inject({ ...rule, match: { method: 'read', object: name, ...rule.match } });
  const stream = openReader(ctx.server, name, extra);
  const retries: RetryEvent[] = [];
  stream.on('retry', (event: RetryEvent) => retries.push(event));
  const read = await readAll(stream);
  expect(ctx.server.grpc.faultsInjected).toBe(faults + 1);
  return { data, read, retries, streams: ctx.server.grpc.reads.streams.slice(before), stream };
}

describe('read faults', () => {
  it('a broken stream is reopened with the read handle at the first byte not delivered', async () => {
    const offset = 5 * MiB + 7;
    const { data, read, streams } = await readWith('break.bin', { match: { offset }, action: { type: 'break' } });
    expect(read.equals(data)).toBe(true);
    expect(streams[0]?.status).toBe('UNAVAILABLE');
    expect(streams[0]?.bytesSent).toBe(offset);
    expect(streams[1]).toMatchObject({ withHandle: true });
    expect(streams[1]?.ranges[0]?.offset).toBe(offset);
  });

  it('a stalled stream is abandoned after stallTimeoutMs and the read resumes', async () => {
    const { data, read, streams } = await readWith(
      'stall.bin',
      { match: { offset: 3 * MiB }, action: { type: 'stall' } },
      { retry: { initialDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 1_000 } },
    );
    expect(read.equals(data)).toBe(true);
    // The reader cancelled the silent stream and reopened (at the first byte it had not delivered: on a loaded machine
    // its timer may fire before every byte sent arrived, so the offset is not asserted).
    expect(streams[0]).toMatchObject({ fault: 'stall', status: 'cancelled', bytesSent: 3 * MiB });
    expect(streams.length).toBeGreaterThan(1);
  });

  it.each(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'RESOURCE_EXHAUSTED'] as const)(
    'a transient status (%s) at open is retried',
    async (status) => {
      const { data, read, retries } = await readWith(`status-${status}.bin`, { action: { type: 'status', status } });
      expect(read.equals(data)).toBe(true);
      expect(retries[0]?.error).toBeInstanceOf(GrpcStatusError);
    },
  );

  it('a transient status mid-read is retried from the first byte not delivered', async () => {
    const { data, read } = await readWith('status-mid.bin', {
      match: { offset: 6 * MiB },
      action: { type: 'status', status: 'UNAVAILABLE' },
    });
    expect(read.equals(data)).toBe(true);
  });

  it('a permanent status fails the read with GrpcStatusError, not retried', async () => {
    ctx.server.putObject(APPEND_BUCKET, 'denied.bin', Buffer.from('secret'));
    ctx.server.grpc.inject({ match: { method: 'read', object: 'denied.bin' }, action: { type: 'status', status: 'PERMISSION_DENIED' } });
    const stream = openReader(ctx.server, 'denied.bin');
    const retries: RetryEvent[] = [];
    stream.on('retry', (event: RetryEvent) => retries.push(event));
    await expect(readAll(stream)).rejects.toMatchObject({ name: 'GrpcStatusError', grpcStatus: 'PERMISSION_DENIED' });
    expect(retries).toHaveLength(0);
  });

  it('a redirect is followed: the next stream carries its routing token in x-goog-request-params and the handle', async () => {
    const { data, read, streams, retries } = await readWith('redirect.bin', {
      match: { offset: 2 * MiB + 1 },
      action: { type: 'redirect', routingToken: 'token-7' },
    });
    expect(read.equals(data)).toBe(true);
    expect(streams[0]?.status).toBe('ABORTED');
    expect(streams[1]).toMatchObject({ routingToken: 'token-7', withHandle: true });
    expect(retries).toHaveLength(0);
  });

  it('a redirect at open is followed', async () => {
    const { data, read, streams } = await readWith('redirect-open.bin', { action: { type: 'redirect', routingToken: 'open-token' } });
    expect(read.equals(data)).toBe(true);
    expect(streams[1]?.routingToken).toBe('open-token');
  });

  it('a message corrupted in transit fails its CRC32C check: nothing of it is delivered, and it is read again', async () => {
    const { data, read, retries } = await readWith('corrupt.bin', { match: { offset: 4 * MiB + 1 }, action: { type: 'corrupt' } });
    expect(read.equals(data)).toBe(true);
    expect(retries[0]?.error).toBeInstanceOf(ChecksumMismatchError);
    expect(retries[0]?.error.message).toMatch(/offset 4194304 has CRC32C .* the server said/);
  });

  it('a corrupted message fails the read with ChecksumMismatchError when retries are refused', async () => {
    ctx.server.putObject(APPEND_BUCKET, 'corrupt-final.bin', randomBytes(3 * MiB));
    ctx.server.grpc.inject({ match: { method: 'read', object: 'corrupt-final.bin', offset: 0 }, action: { type: 'corrupt' } });
    const stream = openReader(ctx.server, 'corrupt-final.bin', { retry: { shouldRetry: () => false } });
    await expect(readAll(stream)).rejects.toMatchObject({ name: 'ChecksumMismatchError', failure: { kind: 'read-message', offset: 0 } });
    expect(stream.bytesRead).toBe(0);
  });
});

describe('a slow consumer', () => {
  it('holds the server back: it never sends more than one range and the buffer ahead of what was consumed', async () => {
    const data = randomBytes(40 * MiB);
    ctx.server.putObject(APPEND_BUCKET, 'slow.bin', data);
    const reads = ctx.server.grpc.reads;
    const before = reads.streams.length;
    const sentBefore = reads.bytesSent;
    const stream = openReader(ctx.server, 'slow.bin');
    const bound = READ_RANGE_BYTES + READ_HIGH_WATER_MARK + 2 * MiB;
    const parts: Buffer[] = [];
    let consumed = 0;
    const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) break;
      parts.push(next.value);
      consumed += next.value.length;
      // Let the reader do all it will do without more consumption: its outstanding range completes (or the server
      // runs ahead past the bound, which is the failure).
      await serverState(ctx.server, () => {
        const streams = reads.streams.slice(before);
        const asked = streams.reduce((n, s) => n + s.ranges.length, 0);
        const done = streams.reduce((n, s) => n + s.rangesDone, 0);
        return asked === done || reads.bytesSent - sentBefore - consumed > bound;
      });
      expect(reads.bytesSent - sentBefore - consumed).toBeLessThanOrEqual(bound);
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });
});
