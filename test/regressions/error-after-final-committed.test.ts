import { describe, expect, it } from 'vitest';
import type { FaultRule } from '../../src/testing/index.js';
import { expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from '../helpers.js';

// Found by test/hostile.test.ts probing (lost final response, then recovery fails). Fixed in 151be6c; the text below
// describes the behaviour before the fix.
// The server finalizes the object but the final response is lost; recovery then fails (status queries time out, or
// answer garbage), and the stream errors. Its cleanup DELETEs the session; GCS answers a finalized session with
// 200 and the object resource, which `ResumableSession.cancel()` (src/resumable/session.ts) counts as "cancelled". So the
// stream reports "the session was cancelled and no object was created" while a complete new generation of the
// object exists: DESIGN promise 2 ("an errored stream never finalizes the object ... an existing object of that
// name is left untouched") is broken, and the message is false.
//
// Either outcome is acceptable: `finish` with a byte-identical object (the 200 on cancel proves the upload
// completed; verify it), or an error with no object left behind (delete the generation the 200 names).

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 10;

async function expectFinishOrNoObject(rules: FaultRule[]): Promise<void> {
  const name = uniqueName('final-committed');
  for (const rule of rules) ctx.server.inject({ match: { ...rule.match, object: name }, action: rule.action });
  const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { retry: { stallTimeoutMs: 300, maxAttempts: 2 } });
  const stored = storedDigest(ctx.server, name);
  if (error === undefined) {
    expect(stored).toBe(expectedDigest(SIZE));
  } else {
    const message = error instanceof Error ? error.message : 'not an Error';
    expect({ message, stored }).toEqual({ message, stored: undefined });
  }
}

describe('regression: an upload whose final request was committed must not error and leave the object behind', () => {
  it('final response lost, then every status query times out', async () => {
    await expectFinishOrNoObject([
      { match: { kind: 'final' }, action: { type: 'drop-response' } },
      { match: { kind: 'query', times: Infinity }, action: { type: 'stall' } },
    ]);
  });

  it('final response lost, then the status query answers 200 with a body that is not an object resource', async () => {
    await expectFinishOrNoObject([
      { match: { kind: 'final' }, action: { type: 'drop-response' } },
      { match: { kind: 'query' }, action: { type: 'hostile', variant: 'bad-object' } },
    ]);
  });

  it('final response lost, then every status query answers 503', async () => {
    await expectFinishOrNoObject([
      { match: { kind: 'final' }, action: { type: 'drop-response' } },
      { match: { kind: 'query', times: Infinity }, action: { type: 'status', status: 503 } },
    ]);
  });
});
