/**
 * Long chaos runs: `npm run soak -- [--append | --parallel] --uploads N --seed S [--concurrency K] [--time-limit-ms T]`.
 *
 * Runs N seeded random uploads (upload i has seed S + i) against local servers that inject faults, K at a time,
 * prints progress and the same summary line as `test/chaos.test.ts` (with `--append`: appendable objects over gRPC,
 * as `test/append-chaos.test.ts`; with `--parallel`: parallel composite uploads, faults on parts, composes and
 * deletes, aborts in every phase), and exits with 1 if any upload ended in a bug outcome (corrupt, hung, wrong
 * error), printing each such seed with the command that replays it.
 */
import { parseArgs } from 'node:util';
import { appendBugLines, DEFAULT_APPEND_TIME_LIMIT_MS, runAppendChaos } from './chaos-append.js';
import { bugLines, DEFAULT_TIME_LIMIT_MS, runChaos } from './chaos-upload.js';
import { DEFAULT_PARALLEL_TIME_LIMIT_MS, parallelBugLines, runParallelChaos } from './chaos-parallel.js';
import { summaryLine, type ChaosSummary, type SeededReport } from './chaos-runner.js';

const USAGE = 'usage: npm run soak -- [--append | --parallel] --uploads N --seed S [--concurrency K] [--time-limit-ms T]';

function integer(name: string, text: string | undefined, fallback: number | undefined, min: number): number {
  if (text === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required\n${USAGE}`);
    return fallback;
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}\n${USAGE}`);
  return value;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      uploads: { type: 'string' },
      seed: { type: 'string' },
      concurrency: { type: 'string' },
      'time-limit-ms': { type: 'string' },
      append: { type: 'boolean', default: false },
      parallel: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const uploads = integer('uploads', values.uploads, undefined, 1);
  const seed = integer('seed', values.seed, Date.now() % 1_000_000_000, 0);
  const concurrency = integer('concurrency', values.concurrency, 4, 1);
  const append = values.append === true;
  const parallel = values.parallel === true;
  if (append && parallel) throw new Error(`--append and --parallel exclude each other\n${USAGE}`);
  const timeLimitMs = integer(
    'time-limit-ms',
    values['time-limit-ms'],
    append ? DEFAULT_APPEND_TIME_LIMIT_MS : parallel ? DEFAULT_PARALLEL_TIME_LIMIT_MS : DEFAULT_TIME_LIMIT_MS,
    1,
  );
  const replay = `npm run soak --${append ? ' --append' : parallel ? ' --parallel' : ''} --uploads 1 --seed`;
  console.log(
    `soak${append ? ' (append)' : parallel ? ' (parallel)' : ''}: uploads=${uploads} seed=${seed} concurrency=${concurrency} (replay one: ${replay} <seed>)`,
  );

  const every = Math.max(1, Math.min(100, Math.ceil(uploads / 20)));
  const counts = { ok: 0, failed: 0, bugs: 0, faults: 0 };
  const started = Date.now();
  const onReport = (report: SeededReport, done: number): void => {
    counts.faults += report.faults.length;
    if (report.outcome === 'ok') counts.ok += 1;
    else if (report.outcome === 'failed-cleanly') counts.failed += 1;
    else {
      counts.bugs += 1;
      console.log(`BUG seed=${report.seed} ${report.outcome}: ${report.detail} (replay: ${replay} ${report.seed})`);
    }
    if (done % every === 0 || done === uploads) {
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(
        `  ${done}/${uploads} ok=${counts.ok} failed-cleanly=${counts.failed} bugs=${counts.bugs} faults=${counts.faults} ${seconds}s`,
      );
    }
  };
  // A fresh server every 100 uploads: sessions that could not be cancelled keep their bytes until the server goes.
  const run = { seed, uploads, concurrency, uploadsPerServer: 100, timeLimitMs, onReport };
  let summary: ChaosSummary;
  let lines: string[];
  if (append) {
    const result = await runAppendChaos(run);
    [summary, lines] = [result, appendBugLines(result)];
  } else if (parallel) {
    const result = await runParallelChaos(run);
    [summary, lines] = [result, parallelBugLines(result)];
  } else {
    const result = await runChaos(run);
    [summary, lines] = [result, bugLines(result)];
  }
  console.log(summaryLine(summary, append ? 'append-chaos' : parallel ? 'parallel-chaos' : 'chaos'));
  if (summary.bugs.length === 0) return 0;
  console.log(`${summary.bugs.length} upload(s) ended in a bug outcome:`);
  for (const line of lines) console.log(line);
  return 1;
}

main().then(
  (code) => {
    // Set, not exit: the process ending on its own also shows that nothing (sockets, timers) was left behind.
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  },
);
