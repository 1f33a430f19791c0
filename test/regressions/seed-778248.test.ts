import { describe, expect, it } from 'vitest';
import { ChecksumMismatchError } from '../../src/index.js';
import { K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from '../helpers.js';
import { runChaosUpload } from '../soak/chaos-upload.js';

// Found by `npm run soak -- --uploads 2000 --seed 777000` (seeds 777667, 778154, 778248, 778424). Fixed in 151be6c; the text below
// describes the behaviour before the fix.
// A byte of a chunk is corrupted in transit; GCS refuses to finalize (400, "Provided checksums do not match"), but
// the final request's response is lost (503 after persisting, a reset, a stall...). The stream recovers with a
// status query, which gets the same 400; `ResumableSession.query()` (src/resumable/session.ts) parses it with
// `sentHash = false`, so `statusError()` maps it to a plain HttpStatusError ("Querying the upload status failed with
// HTTP 400 (the request was rejected)") instead of ChecksumMismatchError ("the data was corrupted in transit;
// upload again"). The object is correctly not created; the error class and message are wrong.

const ctx = useLocalGcs();

describe('regression: a checksum refusal seen by the status query is a ChecksumMismatchError', () => {
  it('seed 778248 replays without a bug outcome', async () => {
    const report = await runChaosUpload(ctx.server, 778248);
    expect({ outcome: report.outcome, detail: report.detail }).toMatchObject({ outcome: 'failed-cleanly' });
    expect(report.error).toBeInstanceOf(ChecksumMismatchError);
  });

  it('corrupt chunk, then the response to the final request is lost (429 after persisting)', async () => {
    const name = uniqueName('checksum-query');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'corrupt', at: 1000 } });
    ctx.server.inject({ match: { kind: 'final', object: name }, action: { type: 'status', status: 429, when: 'after' } });
    const { error } = await upload(ctx.server, name, 2 * K256 + 10, 64 * KiB);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
    expect(error).toBeInstanceOf(ChecksumMismatchError);
  });
});
