import { describe, expect, it } from 'vitest';
import type { FaultRule } from '../../src/testing/index.js';
import { expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from '../helpers.js';

// Defect 7 of issue 12. With `validation: false`, a lost final answer followed by failing status queries ended in
// "no object was created" while the object existed intact: with no checksum to compare, the stream could not tell
// its object from another. The CRC32C is now computed whatever the validation mode, so it can.

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 10;

const lostFinal = (name: string): FaultRule[] => [
  { match: { kind: 'final', object: name }, action: { type: 'drop-response' } },
  { match: { kind: 'query', object: name, times: Infinity }, action: { type: 'status', status: 503 } },
];

describe('a lost final answer with validation off', () => {
  it('the cancel answers with the object: the stream finishes with it', async () => {
    const name = uniqueName('lost-final-cancel');
    for (const rule of lostFinal(name)) ctx.server.inject(rule);
    const { stream, error } = await upload(ctx.server, name, SIZE, 64 * KiB, { validation: false, retry: { maxAttempts: 2 } });
    expect(error).toBeUndefined();
    expect(stream.object?.size).toBe(String(SIZE));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('the cancel fails too: the object lookup proves it is ours, and the stream finishes', async () => {
    const name = uniqueName('lost-final-lookup');
    for (const rule of lostFinal(name)) ctx.server.inject(rule);
    ctx.server.inject({ match: { kind: 'cancel', object: name }, action: { type: 'status', status: 503 } });
    const { stream, error } = await upload(ctx.server, name, SIZE, 64 * KiB, { validation: false, retry: { maxAttempts: 2 } });
    expect(error).toBeUndefined();
    expect(stream.object?.size).toBe(String(SIZE));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });
});
