import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, GcsUploadError, MemoryPool } from '../src/index.js';
import { startLocalGcs, type LocalGcs, type ScopedChaosOptions } from '../src/testing/index.js';
import { bugLines, BUCKET, contentAt, contentDigest, runChaos, sha256, summaryLine } from './soak/chaos-upload.js';
import { expectSoundChaos } from './helpers.js';
import { parallelBugLines, runParallelChaos } from './soak/chaos-parallel.js';

// A fixed base seed: upload i has seed SEED + i, so a failure here replays with `npm run soak -- --uploads 1 --seed X`.
const SEED = 20_240_601;
const UPLOADS = 200;
const CONCURRENCY = 4;

describe('proof under chaos', () => {
  it(
    `${UPLOADS} seeded random uploads with faults and aborts: none corrupt, hung or failing with the wrong error`,
    { timeout: 400_000 },
    async () => {
      const summary = await runChaos({ seed: SEED, uploads: UPLOADS, concurrency: CONCURRENCY });
      console.log(summaryLine(summary));
      expectSoundChaos(summary, bugLines(summary), UPLOADS);
    },
  );

  it(
    '100 seeded uploads sharing a 2 MiB memory pool: none corrupt, hung or failing with the wrong error, ceiling held',
    { timeout: 400_000 },
    async () => {
      const memory = new MemoryPool({ maxBytes: 2 * 1024 * 1024 });
      const summary = await runChaos({ seed: SEED + 10_000, uploads: 100, concurrency: CONCURRENCY, memory });
      console.log(`pooled ${summaryLine(summary)}`);
      if (summary.bugs.length > 0) console.log(bugLines(summary).join('\n'));
      expect(summary.bugs.map((report) => `seed=${report.seed} ${report.outcome}: ${report.detail}`)).toEqual([]);
      expect(summary.corrupted + summary.hung + summary.wrongError).toBe(0);
      expect(memory.stats().peakBytesHeld).toBeLessThanOrEqual(2 * 1024 * 1024);
      expect(memory.stats().bytesLent).toBe(0);
    },
  );
});

describe('trickling sources with the time bound on, under chaos', () => {
  it(
    '24 uploads fed in small writes with maxUncommittedMs 15: each object byte-identical or absent with a typed error',
    { timeout: 300_000 },
    async () => {
      const server = await startLocalGcs();
      try {
        const runs = Array.from({ length: 24 }, async (_, i) => {
          const name = `trickle-${i}`;
          const size = 3 * 256 * 1024 + 1000 * i;
          const scope = server.addChaos({
            seed: 700 + i,
            probability: 0.25,
            kinds: ['reset', 'status-before', 'status-after', 'partial', 'drop-response'],
            unaligned: true,
            object: name,
          });
          const stream = createGcsWriteStream({
            bucket: BUCKET,
            name,
            apiEndpoint: server.url,
            chunkSize: 1024 * 1024,
            maxUncommittedMs: 15,
            retry: { initialDelayMs: 0, maxDelayMs: 2, maxAttempts: 12, stallTimeoutMs: 5_000 },
          });
          const error = await pipeline(async function* () {
            for (let pos = 0; pos < size; pos += 40 * 1024) {
              yield contentAt(i, pos, Math.min(40 * 1024, size - pos));
              // A slow source: 40 KiB every 3 ms, so that blocks wait and the time bound commits them.
              await new Promise<void>((resolve) => setTimeout(resolve, 3));
            }
          }, stream).then(
            () => undefined,
            (e: unknown) => e,
          );
          scope.remove();
          const stored = server.getObject(BUCKET, name);
          if (error === undefined) expect(sha256(stored!.data)).toBe(contentDigest(i, size));
          else {
            expect(error).toBeInstanceOf(GcsUploadError);
            expect(stored).toBeUndefined();
          }
          return error === undefined;
        });
        const completed = (await Promise.all(runs)).filter(Boolean).length;
        expect(completed).toBeGreaterThan(12);
      } finally {
        await server.close();
      }
    },
  );
});

describe('chaos scoped to an upload replays from its seed whatever else the server does', () => {
  // No stalls: whether a stall outlasts the stall timeout depends on timing, everything else on the seed alone.
  const chaos: Omit<ScopedChaosOptions, 'object'> = {
    seed: 99,
    probability: 0.3,
    kinds: ['reset', 'status-before', 'status-after', 'partial', 'drop-response'],
    unaligned: true,
  };
  const size = 9 * 256 * 1024 + 123;

  async function faultsOf(server: LocalGcs, name: string): Promise<Array<string | undefined>> {
    const scope = server.addChaos({ ...chaos, object: name });
    const stream = createGcsWriteStream({
      bucket: BUCKET,
      name,
      apiEndpoint: server.url,
      chunkSize: 256 * 1024,
      adaptiveRequests: false, // request sizes must depend on the seed alone, not on timing
      retry: { initialDelayMs: 0, maxDelayMs: 2, maxAttempts: 20, stallTimeoutMs: 5_000 },
    });
    await pipeline(Readable.from([contentAt(0, 0, size)]), stream);
    expect(scope.fired).toBeGreaterThan(0);
    scope.remove();
    return server.requests.filter((record) => record.object === name).map((record) => record.fault);
  }

  it('alone, or next to other uploads and a server-wide chaos', async () => {
    const quiet = await startLocalGcs();
    const busy = await startLocalGcs({ chaos: { seed: 5, probability: 0.2, kinds: ['status-before'] } });
    try {
      const alone = await faultsOf(quiet, 'scoped');
      const others = Array.from({ length: 3 }, (_, i) =>
        pipeline(
          Readable.from([contentAt(i, 0, size)]),
          createGcsWriteStream({
            bucket: BUCKET,
            name: `other-${i}`,
            apiEndpoint: busy.url,
            chunkSize: 256 * 1024,
            retry: { initialDelayMs: 0, maxDelayMs: 2, maxAttempts: 20 },
          }),
        ),
      );
      const together = await faultsOf(busy, 'scoped');
      await Promise.all(others);
      expect(together).toEqual(alone);
      expect(busy.requests.some((record) => record.object !== 'scoped' && record.fault !== undefined)).toBe(true);
    } finally {
      await Promise.all([quiet.close(), busy.close()]);
    }
  });
});

describe('parallel composite uploads under chaos', () => {
  it(
    '30 seeded parallel uploads (faults on parts, composes and deletes; aborts while writing, composing and deleting): none corrupt, hung, wrong',
    { timeout: 110_000 },
    async () => {
      const summary = await runParallelChaos({ seed: SEED + 20_000, uploads: 30, concurrency: CONCURRENCY });
      console.log(summaryLine(summary, 'parallel-chaos'));
      expectSoundChaos(summary, parallelBugLines(summary), 30);
    },
  );
});
