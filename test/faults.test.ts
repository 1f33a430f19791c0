import { describe, expect, it } from 'vitest';
import { SessionExpiredError } from '../src/index.js';
import type { FaultAction, FaultMatch } from '../src/testing/index.js';
import { expectedDigest, K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const CHUNK = K256;
const SIZE = 4 * CHUNK + 100; // four full chunks, then a final request carrying 100 bytes and the total

const POSITIONS: Array<[string, FaultMatch]> = [
  ['the first chunk', { kind: 'chunk', offset: 0 }],
  ['a middle chunk', { kind: 'chunk', offset: 2 * CHUNK }],
  ['the final chunk', { kind: 'final' }],
];

const RECOVERABLE: Array<[string, FaultAction]> = [
  ['connection reset mid-body', { type: 'reset' }],
  ['408 before persisting', { type: 'status', status: 408 }],
  ['429 before persisting', { type: 'status', status: 429 }],
  ['500 before persisting', { type: 'status', status: 500 }],
  ['502 before persisting', { type: 'status', status: 502 }],
  ['503 before persisting', { type: 'status', status: 503 }],
  ['504 before persisting', { type: 'status', status: 504 }],
  ['503 after persisting', { type: 'status', status: 503, when: 'after' }],
  ['500 after persisting', { type: 'status', status: 500, when: 'after' }],
  ['persisting 0 bytes of the chunk', { type: 'partial', bytes: 0 }],
  ['persisting 64 KiB (unaligned) of the chunk', { type: 'partial', bytes: 64 * KiB }],
  ['response dropped after committing', { type: 'drop-response' }],
  ['no response (stall)', { type: 'stall' }],
];

describe('recoverable faults at every position: the object is byte-identical', () => {
  for (const [where, match] of POSITIONS) {
    for (const [label, action] of RECOVERABLE) {
      it(`${label} at ${where}`, async () => {
        const name = uniqueName('fault');
        ctx.server.inject({ match: { ...match, object: name }, action });
        const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, {
          chunkSize: CHUNK,
          retry: { stallTimeoutMs: 500 },
        });
        expect(error).toBeUndefined();
        expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
      });
    }
  }

  it('a partial commit of 128 KiB of a 1 MiB chunk resends only the tail', async () => {
    const name = uniqueName('partial-tail');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'partial', bytes: 128 * KiB } });
    const size = 3 * 1024 * KiB + 5;
    const { error } = await upload(ctx.server, name, size, 100 * KiB, { chunkSize: 4 * CHUNK });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });

  it('the lost final response of an exact multiple (bytes */TOTAL) is recovered from the status query', async () => {
    const name = uniqueName('final-empty');
    ctx.server.inject({ match: { kind: 'final', object: name }, action: { type: 'drop-response' } });
    const { error, stream } = await upload(ctx.server, name, 2 * CHUNK, 64 * KiB, { chunkSize: CHUNK });
    expect(error).toBeUndefined();
    expect(stream.object?.size).toBe(String(2 * CHUNK));
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * CHUNK));
  });

  it('several faults in a row on the same chunk within the budget', async () => {
    const name = uniqueName('repeat');
    ctx.server.inject({ match: { kind: 'chunk', offset: CHUNK, object: name, times: 4 }, action: { type: 'status', status: 503 } });
    const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { chunkSize: CHUNK });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });
});

describe('expired or terminated sessions fail with SessionExpiredError and leave no object', () => {
  for (const [where, match] of POSITIONS) {
    for (const status of [404, 410] as const) {
      it(`${status} at ${where}`, async () => {
        const name = uniqueName('expire');
        ctx.server.inject({ match: { ...match, object: name }, action: { type: 'expire', status } });
        const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { chunkSize: CHUNK });
        expect(error).toBeInstanceOf(SessionExpiredError);
        expect((error as SessionExpiredError).status).toBe(status);
        expect(storedDigest(ctx.server, name)).toBeUndefined();
      });
    }
  }
});
