import { describe, expect, it } from 'vitest';
import { expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from '../helpers.js';
import { runChaosUpload } from '../soak/chaos-upload.js';

// Found by `npm run soak -- --uploads 2000 --seed 777000` (seed 777320). Fixed in 151be6c; the text below
// describes the behaviour before the fix.
// The server finalizes the object, but the response to the final request is lost; the recovery's status query
// then finds the session gone (404). The stream fails with SessionExpiredError, its cleanup DELETE also gets 404
// (which `ResumableSession.cancel()`, src/resumable/session.ts, counts as cancelled) and the message says "the session was
// cancelled and no object was created", while the complete object exists: DESIGN promise 2 ("an errored stream
// never finalizes the object ... an existing object of that name is left untouched") is broken.
//
// The stream sent every byte with its checksum, so the upload may have completed: after a lost final response,
// a 404/410 is ambiguous. Either outcome is acceptable: `finish` with the verified object (e.g. read the object's
// metadata and check size, CRC32C and that its generation is new), or an error with no object left behind.
// Same family as error-after-final-committed.test.ts (there the cleanup DELETE answers 200 with the object).

const ctx = useLocalGcs();

describe('regression: a lost final response followed by an expired session', () => {
  it('seed 777320 replays without a bug outcome', async () => {
    const report = await runChaosUpload(ctx.server, 777320);
    expect({ outcome: report.outcome, detail: report.detail }).toMatchObject({
      outcome: expect.stringMatching(/^(ok|failed-cleanly)$/) as unknown,
    });
  });

  it('final response dropped, then the status query gets 404: finish with the object, or an error and no object', async () => {
    const name = uniqueName('final-then-404');
    const size = 3 * K256 + 10;
    ctx.server.inject({ match: { kind: 'final', object: name }, action: { type: 'drop-response' } });
    ctx.server.inject({ match: { kind: 'query', object: name }, action: { type: 'expire', status: 404 } });
    const { error } = await upload(ctx.server, name, size, 64 * KiB);
    const stored = storedDigest(ctx.server, name);
    if (error === undefined) expect(stored).toBe(expectedDigest(size));
    else expect({ error: (error as Error).message, stored }).toEqual({ error: (error as Error).message, stored: undefined });
  });
});
