import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsAppendStream, GrpcStatusError, type GcsAppendableWritable } from '../../src/index.js';
import { startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { contentAt, ended, written } from '../helpers.js';

// Found by the append chaos (`npm run soak -- --append --uploads 300 --seed 1`: seeds 149 and 186). The text below
// describes the behaviour before the fix.
// A stream's failure that reached the client between two operations (a write had been sent, the next had not
// started) was never looked at: the next operation saw the failed stream and opened a new one in its place. A
// redirect's routing token was dropped (the server refused the reopen, and the write failed with SupersededError
// although no other writer existed); a refusal (PERMISSION_DENIED) was retried silently and the upload went on as if
// nothing had happened; a transient failure cost neither backoff nor budget.

const BUCKET = 'zonal-bucket';
const PIECE = 100;
let server: LocalGcs;

beforeAll(async () => {
  server = await startLocalGcs({ grpc: true });
});
afterAll(() => server.close());

function open(name: string): GcsAppendableWritable {
  return createGcsAppendStream({
    bucket: BUCKET,
    name,
    grpcEndpoint: server.grpc.address,
    retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 4 },
  });
}

function streamsOf(name: string) {
  return server.grpc.streams.filter((s) => s.object === name);
}

/**
 * Writes small pieces until the object's first stream was replaced or the stream failed, then ends it. A piece is
 * sent without waiting for the server (the write resolves once gRPC took it), and the writer yields to I/O after
 * each: the server's failure of the stream reaches the client between two writes, never during one.
 */
async function writeAcrossTheFailure(stream: GcsAppendableWritable, name: string): Promise<{ error: unknown; written: number }> {
  stream.on('error', () => undefined);
  let pos = 0;
  try {
    while (streamsOf(name).length < 2 && pos < 1_000_000) {
      await written(stream, contentAt(pos, PIECE));
      pos += PIECE;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await ended(stream);
    return { error: undefined, written: pos };
  } catch (error) {
    return { error, written: pos };
  }
}

describe('regression: a stream that failed between two writes', () => {
  it('a redirect is followed: the next stream carries its routing token, the object is byte-identical', async () => {
    const name = 'between/redirect.bin';
    server.grpc.inject({ match: { object: name, offset: 5 * PIECE }, action: { type: 'redirect', routingToken: 'zone-b' } });
    const { error, written: size } = await writeAcrossTheFailure(open(name), name);
    expect(error).toBeUndefined();
    expect(server.getObject(BUCKET, name)?.data.equals(contentAt(0, size))).toBe(true);
    expect(streamsOf(name).map((s) => [s.kind, s.status, s.routingToken])).toEqual([
      ['create', 'ABORTED', undefined],
      ['append', 'OK', 'zone-b'],
    ]);
  });

  it('a refusal fails the next write, typed, and no other stream is opened', async () => {
    const name = 'between/refused.bin';
    server.grpc.inject({ match: { object: name, offset: 5 * PIECE }, action: { type: 'status', status: 'PERMISSION_DENIED' } });
    const { error } = await writeAcrossTheFailure(open(name), name);
    expect(error).toBeInstanceOf(GrpcStatusError);
    expect(error).toMatchObject({ grpcStatus: 'PERMISSION_DENIED', retryable: false });
    expect(streamsOf(name).map((s) => s.status)).toEqual(['PERMISSION_DENIED']);
    // Nothing was flushed before the refusal; the object stays, empty and unfinalized.
    expect(server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 0, finalized: false });
  });
});
