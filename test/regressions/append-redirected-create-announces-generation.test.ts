import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsAppendStream, type AppendableCheckpoint, type GcsAppendStreamOptions } from '../../src/index.js';
import { startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { contentAt, ended, written } from '../helpers.js';

// Found by the append chaos (`npm run soak -- --append --uploads 300 --seed 1`: seeds 3, 12, 18, ...). The text
// below describes the behaviour before the fix.
// A create redirected on its first message (ABORTED with BidiWriteObjectRedirectedError, which carries the new
// object's generation) took the generation from the redirect and reopened the object with append_object_spec, but
// never emitted 'generation', nor the checkpoint of the empty object: an object left appendable (finalize: false)
// before anything was persisted had no checkpoint to take it over with.

const BUCKET = 'zonal-bucket';
let server: LocalGcs;

beforeAll(async () => {
  server = await startLocalGcs({ grpc: true });
});
afterAll(() => server.close());

function options(name: string, extra: Partial<GcsAppendStreamOptions> = {}): GcsAppendStreamOptions {
  return { bucket: BUCKET, name, grpcEndpoint: server.grpc.address, retry: { initialDelayMs: 1, maxDelayMs: 5 }, ...extra };
}

describe('regression: a create redirected before its first answer', () => {
  it("emits 'generation' and the empty object's checkpoint, which takes the object over", async () => {
    const name = 'redirected/create.log';
    server.grpc.inject({ match: { object: name }, action: { type: 'redirect', routingToken: 'zone-c' } });
    const first = createGcsAppendStream(options(name, { finalize: false }));
    const generations: string[] = [];
    const checkpoints: AppendableCheckpoint[] = [];
    first.on('generation', (generation: string) => generations.push(generation));
    first.on('checkpoint', (checkpoint: AppendableCheckpoint) => checkpoints.push(checkpoint));
    await ended(first);
    const state = server.grpc.appendable(BUCKET, name);
    expect(state).toMatchObject({ size: 0, finalized: false });
    expect(generations).toEqual([state?.generation]);
    expect(checkpoints).toMatchObject([{ bucket: BUCKET, name, generation: state?.generation, bytesCommitted: 0, crc32c: 0 }]);
    expect(server.grpc.streams.filter((s) => s.object === name).map((s) => [s.kind, s.status])).toEqual([
      ['create', 'ABORTED'],
      ['append', 'OK'],
    ]);

    const second = createGcsAppendStream(options(name, { resume: checkpoints[0] }));
    await written(second, contentAt(0, 5000));
    await ended(second);
    expect(server.getObject(BUCKET, name)?.data.equals(contentAt(0, 5000))).toBe(true);
    expect(server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 5000, finalized: true, generation: state?.generation });
  });
});
