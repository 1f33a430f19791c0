import { describe, it } from 'vitest';
import { expectSoundChaos } from './helpers.js';
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
    { timeout: 300_000 },
    async () => {
      const summary = await runAppendChaos({ seed: SEED, uploads: UPLOADS, concurrency: CONCURRENCY });
      console.log(summaryLine(summary, 'append-chaos'));
      expectSoundChaos(summary, appendBugLines(summary), UPLOADS);
    },
  );
});
