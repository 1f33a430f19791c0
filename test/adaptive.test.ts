/**
 * Adaptive request sizes: while answers are slow and the source is fast, a request carries the whole window
 * (bufferChunks x chunkSize) instead of one chunk. These tests use a server that delays every answer by 25 ms and a
 * source that fills a chunk in a single write, so the pacer's choice is far from its threshold.
 */
import { once } from 'node:events';
import { OAuth2Client } from 'google-auth-library';
import { finished, pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream, type GcsResumableWritable } from '../src/index.js';
import { nextWindowTarget, RequestPacer } from '../src/resumable/pacing.js';
import { startLocalGcs, type FaultAction, type LocalGcs } from '../src/testing/index.js';
import { contentAt, expectedDigest, K256, KiB, MiB, source, storedDigest, streamOptions, uniqueName, written } from './helpers.js';

const LATENCY_MS = 25;
const WINDOW = 2 * K256;

let server: LocalGcs;
beforeAll(async () => {
  server = await startLocalGcs({ latencyMs: LATENCY_MS });
});
afterAll(async () => {
  await server.close();
});

/**
 * The object is intact and its last request carried data and the total (the window holds whole blocks, whatever that
 * request's start): no empty request finalized it.
 */
function expectFinalizedWithData(name: string, size: number): void {
  expect(storedDigest(server, name)).toBe(expectedDigest(size));
  const ranges = server.requests.filter((r) => r.object === name && r.contentRange !== undefined).map((r) => r.contentRange);
  expect(ranges.at(-1)).toMatch(new RegExp(`^bytes \\d+-${size - 1}/${size}$`));
  expect(ranges.filter((r) => r!.startsWith('bytes */'))).toEqual([]);
}

/** Body sizes of the upload's data requests, in order. */
function bodySizes(name: string): number[] {
  return server.requests.filter((r) => r.object === name && (r.kind === 'chunk' || r.kind === 'final')).map((r) => r.bytesReceived);
}

describe('the pacer (pure decisions)', () => {
  it('prefers the whole window once the fixed latency exceeds n / (n - 1) chunk fills (two fills for two chunks)', () => {
    const pacer = new RequestPacer(2, K256, 60_000);
    expect(pacer.wholeWindow(1)).toBe(false); // nothing measured yet
    pacer.observe(0, 0, 30, 0); // the session request: 30 ms without a body
    expect(pacer.wholeWindow(undefined)).toBe(false);
    expect(pacer.wholeWindow(1)).toBe(true); // 30 ms answers, 1 ms to fill a chunk
    expect(pacer.wholeWindow(14)).toBe(true);
    expect(pacer.wholeWindow(16)).toBe(false); // a slower writer: sending each chunk as it fills wins
    pacer.observe(0, 0, 2, 0);
    pacer.observe(0, 0, 2, 0);
    expect(pacer.fixedLatencyMs).toBeCloseTo(9, 5);
    expect(pacer.wholeWindow(4)).toBe(true);
    expect(pacer.wholeWindow(5)).toBe(false);
  });

  it('data answers lower the fixed latency but never raise it: their wait includes the server draining the body', () => {
    const pacer = new RequestPacer(2, MiB, 60_000);
    pacer.observe(0, 0, 2, 0); // a quick session request (loopback)
    for (let i = 0; i < 4; i++) pacer.observe(0, 10, 22, MiB); // 12 ms waits after each 1 MiB body
    expect(pacer.latencyMs).toBeGreaterThan(10);
    expect(pacer.fixedLatencyMs).toBe(2);
    expect(pacer.wholeWindow(4)).toBe(false); // by the answer time alone (> 10 ms) it would have been true
    const slow = new RequestPacer(2, MiB, 60_000);
    slow.observe(0, 0, 40, 0);
    for (let i = 0; i < 4; i++) slow.observe(0, 10, 12, MiB); // the network got quicker
    expect(slow.fixedLatencyMs).toBeLessThan(5);
    expect(slow.wholeWindow(4)).toBe(false);
  });

  it('never when a whole window would take more than half the stall timeout at the pace of the last request', () => {
    const pacer = new RequestPacer(2, MiB, 10_000);
    pacer.observe(0, 1_000, 1_100, MiB); // 1.1 s per MiB: a 2 MiB window would take 2.2 s
    expect(pacer.wholeWindow(1)).toBe(true);
    pacer.observe(0, 2_900, 3_000, MiB); // 3 s per MiB: 6 s > 5 s
    expect(pacer.wholeWindow(1)).toBe(false);
  });

  it('pipelines once the writer fills the whole window slower than the fixed latency, else waits for the window', () => {
    const pacer = new RequestPacer(16, MiB, 60_000);
    pacer.observe(0, 0, 20, 0); // 20 ms answers without a body
    expect(pacer.requestMode(30, 4 * MiB, MiB)).toBe('chunks'); // a chunk takes longer to fill than an answer
    expect(pacer.requestMode(2, 4 * MiB, MiB)).toBe('whole'); // the window fills in 8 ms: waiting for it is cheap
    expect(pacer.requestMode(2, 64 * MiB, MiB)).toBe('pipelined'); // 128 ms to fill: send what is there, refill
  });

  it('grows a fast stream over a long round trip towards 12 x bandwidth x latency, within the cap', () => {
    const pacer = new RequestPacer(64, 8 * MiB, 60_000, () => 0.3);
    expect(pacer.growToBytes(8 * MiB, 512 * MiB, 'pipelined')).toBe(16 * MiB); // nothing measured: two requests
    pacer.observe(0, 0, 20, 0);
    pacer.observe(0, 10, 30, 8 * MiB); // 8 MiB in 10 ms plus the 20 ms wait: 0.8 MiB per ms
    expect(pacer.growToBytes(8 * MiB, 512 * MiB, 'pipelined')).toBeCloseTo(12 * 0.8 * MiB * 20, -3);
    expect(pacer.growToBytes(8 * MiB, 64 * MiB, 'pipelined')).toBe(64 * MiB);
    expect(pacer.growToBytes(8 * MiB, 512 * MiB, 'chunks')).toBe(16 * MiB); // one chunk per request: two suffice
  });

  it('grows beyond two requests only while the event loop mostly waits between answers', () => {
    let busy = 0.9;
    const pacer = new RequestPacer(64, 8 * MiB, 60_000, () => busy);
    pacer.observe(0, 0, 20, 0);
    pacer.observe(0, 10, 30, 8 * MiB); // the latency says grow, the busy loop says the CPU is the limit
    expect(pacer.growToBytes(8 * MiB, 512 * MiB, 'pipelined')).toBe(16 * MiB);
    busy = 0.1;
    pacer.observe(0, 10, 30, 8 * MiB); // smoothed: (0.9 + 0.1) / 2
    expect(pacer.growToBytes(8 * MiB, 512 * MiB, 'pipelined')).toBeGreaterThan(16 * MiB);
  });

  it('grows the target by what the writer fell short while it waited, at least doubling, within growToBlocks', () => {
    const base = { targetBlocks: 4, peakBlocks: 4, growToBlocks: 1_000 };
    expect(nextWindowTarget({ ...base, blockedAtTarget: true, starvedBlocks: 0 })).toBe(8);
    expect(nextWindowTarget({ ...base, blockedAtTarget: true, starvedBlocks: 100 })).toBe(104);
    expect(nextWindowTarget({ ...base, blockedAtTarget: true, starvedBlocks: 5_000 })).toBe(1_000);
    // Not held back by memory: follows what the writer used, whatever it waited for.
    expect(nextWindowTarget({ ...base, blockedAtTarget: false, starvedBlocks: 100, peakBlocks: 1 })).toBe(2);
  });

  it('never with a single chunk buffer', () => {
    const one = new RequestPacer(1, K256, 60_000);
    one.observe(0, 0, 1_000, 0);
    expect(one.wholeWindow(0)).toBe(false);
  });
});

describe('adaptive request sizes against slow answers', () => {
  it('sends the whole window per request once answers are slow, and the object is byte-identical', async () => {
    const name = uniqueName('adaptive-whole');
    const size = 4 * MiB + 100;
    await pipeline(source(size, MiB), createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true })));
    expect(storedDigest(server, name)).toBe(expectedDigest(size));
    const sizes = bodySizes(name);
    expect(Math.max(...sizes)).toBe(WINDOW);
    expect(sizes.filter((s) => s === WINDOW).length).toBeGreaterThanOrEqual(5);
  });

  it('sizes requests the same through a google-auth-library client (the body-sent hook passes through gaxios)', async () => {
    const name = uniqueName('adaptive-gaxios');
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'ya29.test', expiry_date: Date.now() + 3_600_000 });
    const size = 3 * MiB;
    await pipeline(source(size, MiB), createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true, authClient })));
    expect(storedDigest(server, name)).toBe(expectedDigest(size));
    expect(Math.max(...bodySizes(name))).toBe(WINDOW);
  });

  it('finalizes an exact multiple of the window with its last data request, not an extra empty one', async () => {
    const name = uniqueName('adaptive-multiple');
    const size = 4 * MiB;
    await pipeline(source(size, MiB), createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true })));
    expectFinalizedWithData(name, size);
  });

  it('waits for the end a writer gives a moment after its last write filled the window exactly (no empty finalize)', async () => {
    // Node 26 calls _final a little later after the last write than Node 20 did: the window, at its target and with
    // nothing more from the writer, sent everything as a non-final request, and an empty one then finalized.
    const name = uniqueName('adaptive-exact-pause');
    const size = 4 * MiB;
    const stream = createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true }));
    const done = finished(stream);
    for (let at = 0; at < size; at += MiB) await written(stream, contentAt(at, MiB));
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    stream.end();
    await done;
    expectFinalizedWithData(name, size);
  });

  it('grows across the session open: a fast source starts with more than the one block its window began with', async () => {
    const name = uniqueName('adaptive-open');
    const size = 6 * MiB;
    const options = streamOptions(server, name, { adaptiveRequests: true, chunkSize: MiB, bufferChunks: 8 });
    await pipeline(source(size, MiB), createGcsWriteStream(options));
    expect(storedDigest(server, name)).toBe(expectedDigest(size));
    // The writer filled its first block at once and waited through the 25 ms open: the window grew by what it fell
    // short, so the first request carries more than that block.
    expect(bodySizes(name)[0]).toBeGreaterThan(K256);
  });

  it('keeps to one chunk per request with adaptiveRequests: false', async () => {
    const name = uniqueName('adaptive-off');
    const size = 2 * MiB + 100;
    await pipeline(source(size, MiB), createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: false })));
    expect(storedDigest(server, name)).toBe(expectedDigest(size));
    expect(Math.max(...bodySizes(name))).toBe(K256);
  });

  it('does not hold a ready chunk back for longer than an answer when the source pauses', async () => {
    const name = uniqueName('adaptive-pause');
    const stream = createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true }));
    const failed = once(stream, 'error');
    failed.catch(() => undefined);
    let pos = 0;
    const write = (n: number): void => {
      stream.write(contentAt(pos, n));
      pos += n;
    };
    // Fast first, so that slow answers make the pacer prefer whole windows; the last full chunk is followed by one
    // byte (so it is known not to be the last), and then the source waits for that chunk to be committed. Holding
    // the chunk until the window fills would wait for ever.
    write(2 * MiB + K256 + 1);
    await waitForCommit(stream, 2 * MiB + K256);
    write(300 * KiB);
    stream.end();
    await Promise.race([once(stream, 'finish'), failed]);
    expect(storedDigest(server, name)).toBe(expectedDigest(pos));
  });
});

/** Resolves once the stream reports at least `bytes` committed. */
async function waitForCommit(stream: GcsResumableWritable, bytes: number): Promise<void> {
  while (stream.bytesCommitted < bytes) await once(stream, 'progress');
}

describe('faults during whole-window requests: the object is byte-identical', () => {
  const FAULTS: Array<[string, FaultAction]> = [
    ['connection reset mid-body', { type: 'reset' }],
    ['503 after persisting', { type: 'status', status: 503, when: 'after' }],
    ['persisting 64 KiB (unaligned) of it', { type: 'partial', bytes: 64 * KiB }],
    ['persisting one chunk of it', { type: 'partial', bytes: K256 }],
    ['response dropped after committing', { type: 'drop-response' }],
  ];
  for (const [label, action] of FAULTS) {
    it(label, async () => {
      const name = uniqueName('adaptive-fault');
      // The window grows from one block to its cap (two here) over the first requests; the request that covers
      // 1 MiB is well inside whole-window pacing.
      server.inject({ match: { kind: 'chunk', offset: MiB, object: name }, action });
      const size = 3 * MiB + 7;
      await pipeline(
        source(size, MiB),
        createGcsWriteStream(streamOptions(server, name, { adaptiveRequests: true, retry: { stallTimeoutMs: 2_000 } })),
      );
      expect(storedDigest(server, name)).toBe(expectedDigest(size));
      const faulted = server.requests.find((r) => r.object === name && r.fault !== undefined);
      const [, start, end] = /^bytes (\d+)-(\d+)\/\*$/.exec(faulted?.contentRange ?? '') ?? [];
      expect(Number(end) - Number(start) + 1).toBe(WINDOW);
      expect(Number(start) <= MiB && MiB <= Number(end)).toBe(true);
    });
  }
});
