/**
 * Runs many seeded chaos uploads, a few at a time, and totals their outcomes: the part of a chaos run that does not
 * depend on which stream is under test. `chaos-upload.ts` (resumable uploads over the JSON API) and
 * `chaos-append.ts` (appendable objects over gRPC) each supply how one upload runs and which server it runs on.
 */
import type { LocalGcs } from '../../src/testing/index.js';

/**
 * How one upload ended: `ok` and `failed-cleanly` are what the stream promises; `corrupt` (the server holds bytes it
 * should not), `hung` (no `close` within the time limit) and `wrong-error` (anything else) are bugs.
 */
export type Outcome = 'ok' | 'failed-cleanly' | 'corrupt' | 'hung' | 'wrong-error';

/** Whether an outcome is a bug. */
export function isBug(outcome: Outcome): boolean {
  return outcome === 'corrupt' || outcome === 'hung' || outcome === 'wrong-error';
}

/** What every chaos report says, whichever stream it ran. */
export interface SeededReport {
  seed: number;
  outcome: Outcome;
  /** Faults that fired on the upload's requests or streams. */
  faults: string[];
  /** Why the outcome is what it is (for bugs: what was wrong). */
  detail: string;
}

/**
 * One line per bug of `summary`: the seed, the outcome, what was wrong, the plan (`describePlan`), and how to replay
 * it (`npm run soak -- [kind] --uploads 1 --seed S`, with `kind` the soak's flag: `--append`, `--parallel` or none).
 */
export function seededBugLines<R extends SeededReport>(summary: ChaosSummary<R>, describePlan: (report: R) => string, kind = ''): string[] {
  return summary.bugs.map(
    (report) =>
      `seed=${report.seed} ${report.outcome}: ${report.detail}\n  faults: ${report.faults.join(', ') || 'none'}\n` +
      `  plan: ${describePlan(report)}\n  replay: npm run soak -- ${kind === '' ? '' : `${kind} `}--uploads 1 --seed ${report.seed}`,
  );
}

/** Totals of a run. */
export interface ChaosSummary<R extends SeededReport = SeededReport> {
  uploads: number;
  faults: number;
  /** Uploads that met at least one fault and still stored a byte-identical object. */
  recovered: number;
  ok: number;
  failedCleanly: number;
  corrupted: number;
  hung: number;
  wrongError: number;
  /** Reports of the uploads whose outcome is a bug. */
  bugs: R[];
  seed: number;
  elapsedMs: number;
}

/** Options of {@link runSeeded}. */
export interface SeededRunOptions<R extends SeededReport> {
  /** Seed of the first upload; upload i has seed `seed + i`. */
  seed: number;
  uploads: number;
  /** Uploads in flight at once. */
  concurrency: number;
  /** Start a fresh server after this many uploads (bounds what a server accumulates); default: one server. */
  uploadsPerServer?: number;
  /** Starts a server for the uploads. */
  start: () => Promise<LocalGcs>;
  /** Runs the upload of `seed` against `server`; never throws. */
  runOne: (server: LocalGcs, seed: number) => Promise<R>;
  /** Called after every upload. */
  onReport?: (report: R, done: number) => void;
}

/** Runs `uploads` seeded uploads, `concurrency` at a time, and totals their outcomes. */
export async function runSeeded<R extends SeededReport>(options: SeededRunOptions<R>): Promise<ChaosSummary<R>> {
  const { seed, uploads, concurrency } = options;
  const perServer = options.uploadsPerServer ?? Number.POSITIVE_INFINITY;
  const started = Date.now();
  const summary: ChaosSummary<R> = {
    uploads,
    faults: 0,
    recovered: 0,
    ok: 0,
    failedCleanly: 0,
    corrupted: 0,
    hung: 0,
    wrongError: 0,
    bugs: [],
    seed,
    elapsedMs: 0,
  };
  // Servers by generation; each is closed once all of its uploads are done.
  const servers = new Map<number, { server: Promise<LocalGcs>; remaining: number }>();
  const serverFor = (index: number): { generation: number; server: Promise<LocalGcs> } => {
    const generation = Number.isFinite(perServer) ? Math.floor(index / perServer) : 0;
    let entry = servers.get(generation);
    if (entry === undefined) {
      const remaining = Number.isFinite(perServer) ? Math.min(perServer, uploads - generation * perServer) : uploads;
      entry = { server: options.start(), remaining };
      servers.set(generation, entry);
    }
    return { generation, server: entry.server };
  };
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < uploads) {
      const index = next++;
      const { generation, server: starting } = serverFor(index);
      const server = await starting;
      const report = await options.runOne(server, seed + index);
      const entry = servers.get(generation)!;
      entry.remaining -= 1;
      if (entry.remaining === 0) {
        servers.delete(generation);
        await server.close();
      }
      summary.faults += report.faults.length;
      switch (report.outcome) {
        case 'ok':
          summary.ok += 1;
          if (report.faults.length > 0) summary.recovered += 1;
          break;
        case 'failed-cleanly':
          summary.failedCleanly += 1;
          break;
        case 'corrupt':
          summary.corrupted += 1;
          break;
        case 'hung':
          summary.hung += 1;
          break;
        case 'wrong-error':
          summary.wrongError += 1;
          break;
      }
      if (isBug(report.outcome)) summary.bugs.push(report);
      done += 1;
      options.onReport?.(report, done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, uploads)) }, () => worker()));
  summary.elapsedMs = Date.now() - started;
  return summary;
}

/** The summary line the tests and the soak print; `label` names the run (`chaos`, `append-chaos`). */
export function summaryLine(summary: ChaosSummary, label = 'chaos'): string {
  return (
    `${label}: uploads=${summary.uploads} faults=${summary.faults} recovered=${summary.recovered} ` +
    `failed-cleanly=${summary.failedCleanly} corrupted=${summary.corrupted} hung=${summary.hung} seed=${summary.seed}` +
    (summary.wrongError > 0 ? ` wrong-error=${summary.wrongError}` : '')
  );
}
