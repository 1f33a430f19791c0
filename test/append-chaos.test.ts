import { describe, expect, it } from 'vitest';
import { appendBugLines, runAppendChaos } from './soak/chaos-append.js';
import { summaryLine } from './soak/chaos-runner.js';

// A fixed base seed: upload i has seed SEED + i, so a failure here replays with
// `npm run soak -- --append --uploads 1 --seed X`.
const SEED = 20_250_117;
const UPLOADS = 100;
const CONCURRENCY = 4;

describe('appendable objects under chaos', () => {
  it(
    `${UPLOADS} seeded random append uploads with gRPC faults, flushes and aborts: none corrupt, hung or failing with the wrong error`,
    { timeout: 60_000 },
    async () => {
      const summary = await runAppendChaos({ seed: SEED, uploads: UPLOADS, concurrency: CONCURRENCY });
      console.log(summaryLine(summary, 'append-chaos'));
      if (summary.bugs.length > 0) console.log(appendBugLines(summary).join('\n'));
      expect(summary.bugs.map((report) => `seed=${report.seed} ${report.outcome}: ${report.detail}`)).toEqual([]);
      expect(summary.corrupted).toBe(0);
      expect(summary.hung).toBe(0);
      expect(summary.wrongError).toBe(0);
      // The run must actually exercise recovery and clean failure, not just happy paths.
      expect(summary.recovered).toBeGreaterThan(UPLOADS / 4);
      expect(summary.failedCleanly).toBeGreaterThan(0);
    },
  );
});
