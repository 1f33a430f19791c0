import { describe, expect, it } from 'vitest';
import { createGcsAppendStream, type AppendableCheckpoint } from '../../src/index.js';
import { APPEND_BUCKET, contentAt, ended, written, useLocalAppendGcs } from '../helpers.js';

// Found by the append chaos (`npm run soak -- --append --uploads 300 --seed 1`: seeds 3, 12, 18, ...). The text
// below describes the behaviour before the fix.
// A create redirected on its first message (ABORTED with BidiWriteObjectRedirectedError, which carries the new
// object's generation) took the generation from the redirect and reopened the object with append_object_spec, but
// never emitted 'generation', nor the checkpoint of the empty object: an object left appendable (finalize: false)
// before anything was persisted had no checkpoint to take it over with.

const BUCKET = APPEND_BUCKET;
const ctx = useLocalAppendGcs();
const options = ctx.options;

describe('regression: a create redirected before its first answer', () => {
  it("emits 'generation' and the empty object's checkpoint, which takes the object over", async () => {
    const name = 'redirected/create.log';
    ctx.server.grpc.inject({ match: { object: name }, action: { type: 'redirect', routingToken: 'zone-c' } });
    const first = createGcsAppendStream(options(name, { finalize: false }));
    const generations: string[] = [];
    const checkpoints: AppendableCheckpoint[] = [];
    first.on('generation', (generation: string) => generations.push(generation));
    first.on('checkpoint', (checkpoint: AppendableCheckpoint) => checkpoints.push(checkpoint));
    await ended(first);
    const state = ctx.server.grpc.appendable(BUCKET, name);
    expect(state).toMatchObject({ size: 0, finalized: false });
    expect(generations).toEqual([state?.generation]);
    expect(checkpoints).toMatchObject([{ bucket: BUCKET, name, generation: state?.generation, bytesCommitted: 0, crc32c: 0 }]);
    expect(ctx.server.grpc.streams.filter((s) => s.object === name).map((s) => [s.kind, s.status])).toEqual([
      ['create', 'ABORTED'],
      ['append', 'OK'],
    ]);

    const second = createGcsAppendStream(options(name, { resume: checkpoints[0] }));
    await written(second, contentAt(0, 5000));
    await ended(second);
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, 5000))).toBe(true);
    expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 5000, finalized: true, generation: state?.generation });
  });
});
