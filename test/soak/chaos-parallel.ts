/**
 * The chaos engine of parallel composite uploads (`parallel > 1`), for `test/chaos.test.ts` and
 * `npm run soak -- --parallel`: one seeded random upload, its parts, composes and deletes faulted, and aborted in
 * any phase (while writing, at the first compose, at the first delete).
 *
 * Each upload has a bucket of its own, so that its scripted rules and scoped chaos (matched by bucket) reach its
 * temporary objects, whose names are random, and nothing else; and so that what it left is the bucket's listing.
 *
 * Every upload ends in one of:
 * - `ok`: `finish` once and the object holds exactly the source; the temporary objects left are exactly
 *   `stream.leftovers` (deletes that failed);
 * - `failed-cleanly`: a typed error once (an `UploadAbortedError` only after an abort), or a silent `destroy()`;
 *   no object, and no temporary object left that `error.leftovers` (`stream.leftovers`) does not list. An abort
 *   that came after the final compose succeeded is too late: the object then exists, holds the source, and
 *   `stream.object` names it;
 * - `corrupt`, `hung`, `wrong-error`: bugs.
 */
import { createHash } from 'node:crypto';
import { Gaxios } from 'gaxios';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ChecksumMismatchError,
  createGcsWriteStream,
  GcsUploadError,
  InvalidArgumentError,
  ListenerError,
  ProtocolError,
  SourceMismatchError,
  UploadAbortedError,
  type AuthorizedClient,
  type GcsResumableWritable,
  type HttpRequest,
  type RetryOptions,
} from '../../src/index.js';
import {
  createRng,
  randomInt,
  startLocalGcs,
  type ChaosKind,
  type FaultAction,
  type FaultMatch,
  type LocalGcs,
  type Rng,
  type ScopedChaosOptions,
} from '../../src/testing/index.js';
import { runSeeded, seededBugLines, type ChaosSummary, type Outcome, type SeededReport } from './chaos-runner.js';
import { contentAt, describeError, KiB, logUniform, meanWrite, MiB, pick, sha256 } from './chaos-upload.js';

const K256 = 256 * KiB;
/** Time an upload may take from start to `close` before it counts as hung. */
export const DEFAULT_PARALLEL_TIME_LIMIT_MS = 30_000;
const PREFIX = 'gcs-stream-parts/';
const RETRYABLE = [408, 429, 500, 502, 503, 504] as const;

/** When a planned abort happens. */
export interface ParallelAbortPlan {
  /** `write`: at byte `at` of the source; `compose`/`delete`: when the first such request is sent. */
  phase: 'write' | 'compose' | 'delete';
  at: number;
  how: 'destroy' | 'destroy-silent' | 'signal';
}

/** One seeded parallel upload, decided before it starts. */
export interface ParallelPlan {
  seed: number;
  bucket: string;
  name: string;
  size: number;
  origin: number;
  parallel: number;
  partSize: number;
  chunkSize: number;
  maxWrite: number;
  retry: Required<Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'stallTimeoutMs' | 'maxAttempts'>>;
  chaos: Omit<ScopedChaosOptions, 'object' | 'bucket'> | undefined;
  faults: Array<{ match: FaultMatch; action: FaultAction }>;
  abort: ParallelAbortPlan | undefined;
  ifGenerationMatch0: boolean;
}

function planSize(rng: Rng, partSize: number): number {
  const roll = rng();
  if (roll < 0.2) return randomInt(rng, 0, partSize); // one part: an ordinary object
  if (roll < 0.55) return Math.max(0, randomInt(rng, 2, 12) * partSize + pick(rng, [0, 0, 1, -1, 17]));
  // Up to 40 parts of 256 KiB: beyond 32, the compose goes through tiers.
  if (roll < 0.7) return randomInt(rng, 33, 40) * K256 + randomInt(rng, 0, K256);
  return randomInt(rng, partSize + 1, Math.min(12 * MiB, 20 * partSize));
}

function planFault(rng: Rng, bucket: string, stallTimeoutMs: number): { match: FaultMatch; action: FaultAction } {
  const times = rng() < 0.75 ? 1 : randomInt(rng, 2, 3);
  const where = rng();
  const kind =
    where < 0.3 ? 'chunk' : where < 0.45 ? 'final' : where < 0.55 ? 'open' : where < 0.6 ? 'query' : where < 0.8 ? 'compose' : 'delete';
  const objectApi = kind === 'compose' || kind === 'delete';
  const match: FaultMatch = { kind, bucket, times, ...(kind === 'chunk' || kind === 'final' ? { nth: randomInt(rng, 0, 1) } : {}) };
  const roll = rng();
  let action: FaultAction;
  if (roll < 0.2) action = { type: 'reset' };
  else if (roll < 0.45) action = { type: 'status', status: pick(rng, RETRYABLE), when: rng() < 0.5 ? 'before' : 'after' };
  else if (roll < 0.6) action = { type: 'drop-response' };
  else if (roll < 0.72) action = { type: 'stall', ms: rng() < 0.7 ? randomInt(rng, 1, 40) : stallTimeoutMs + randomInt(rng, 50, 200) };
  else if (roll < 0.8 && !objectApi) action = { type: 'partial', bytes: randomInt(rng, 0, K256 - 1) };
  // (A delete answered 404 says the object is gone: a fault that lies about that would leave it unseen.)
  else if (roll < 0.9) action = { type: 'status', status: pick(rng, kind === 'delete' ? [403, 412] : [403, 404, 412]) };
  else action = { type: 'status', status: 503 };
  return { match, action };
}

/** Derives the whole upload from its seed. */
export function planParallelUpload(seed: number): ParallelPlan {
  const rng = createRng(seed ^ 0x9a7a11e1);
  const partSize = pick(rng, [K256, K256, 2 * K256, 4 * K256]);
  const size = planSize(rng, partSize);
  const retry = {
    initialDelayMs: randomInt(rng, 0, 2),
    maxDelayMs: 5,
    stallTimeoutMs: randomInt(rng, 300, 500),
    maxAttempts: randomInt(rng, 8, 12),
  };
  const bucket = `parallel-chaos-${seed}`;
  let chaos: ParallelPlan['chaos'];
  if (rng() < 0.5) {
    const kinds: ChaosKind[] = ['reset', 'status-before', 'status-after', 'partial', 'drop-response', 'stall'];
    chaos = {
      seed: randomInt(rng, 1, 0x7fff_ffff),
      probability: pick(rng, [0.02, 0.05, 0.1, 0.15]),
      kinds,
      requests: ['open', 'chunk', 'final', 'query', 'compose', 'delete'],
      unaligned: rng() < 0.5,
      statuses: [...RETRYABLE],
      stallMinMs: 1,
      stallMaxMs: rng() < 0.3 ? retry.stallTimeoutMs + 150 : 40,
      maxFaults: randomInt(rng, 4, 20),
    };
  }
  const faults = Array.from({ length: chaos === undefined ? randomInt(rng, 1, 4) : randomInt(rng, 0, 2) }, () =>
    planFault(rng, bucket, retry.stallTimeoutMs),
  );
  // At most ~20,000 writes an upload: the run tests the stream, not the harness.
  let maxWrite = logUniform(rng, 2 * MiB);
  while (maxWrite < 2 * MiB && size / meanWrite(maxWrite) > 20_000) maxWrite *= 2;
  let abort: ParallelAbortPlan | undefined;
  if (rng() < 0.25) {
    abort = {
      phase: pick(rng, ['write', 'write', 'compose', 'delete'] as const),
      at: randomInt(rng, 0, Math.max(0, size - 1)),
      how: pick(rng, ['destroy', 'destroy-silent', 'signal'] as const),
    };
  }
  return {
    seed,
    bucket,
    name: `p/${seed}`,
    size,
    origin: randomInt(rng, 0, 1_000_000),
    parallel: pick(rng, [2, 3, 4, 8]),
    partSize,
    chunkSize: pick(rng, [K256, 2 * K256, 4 * K256]),
    maxWrite: Math.min(maxWrite, 2 * MiB),
    retry,
    chaos,
    faults,
    abort,
    ifGenerationMatch0: rng() < 0.3,
  };
}

/** A one-line description of a plan, for failure reports. */
export function describeParallelPlan(plan: ParallelPlan): string {
  const faults = plan.faults.map((f) => `${JSON.stringify(f.match)}->${JSON.stringify(f.action)}`).join(' ');
  return (
    `size=${plan.size} parallel=${plan.parallel} partSize=${plan.partSize / KiB}KiB chunk=${plan.chunkSize / KiB}KiB ` +
    `maxWrite=${plan.maxWrite} retry=${JSON.stringify(plan.retry)} chaos=${plan.chaos ? `p${plan.chaos.probability}` : 'none'} ` +
    `faults=[${faults}] abort=${plan.abort ? `${plan.abort.how}@${plan.abort.phase}:${plan.abort.at}` : 'none'} ifGenerationMatch0=${plan.ifGenerationMatch0}`
  );
}

/** What happened to one parallel upload. */
export interface ParallelReport extends SeededReport {
  error: unknown;
  plan: ParallelPlan;
}

/** A client that tells `seen` of every request before sending it through gaxios (the library's transport). */
function observingClient(seen: (request: HttpRequest) => void): AuthorizedClient {
  const gaxios = new Gaxios();
  return {
    request: (request) => {
      seen(request);
      return gaxios.request(request);
    },
  };
}

/** Which error classes a failure may have: typed, abort only after an abort, never one that says the code is wrong. */
function errorProblem(error: unknown, aborted: boolean, faults: readonly string[]): string | undefined {
  if (!(error instanceof GcsUploadError)) return `the error is not a GcsUploadError: ${String(error)}`;
  if (error instanceof UploadAbortedError) return aborted ? undefined : 'UploadAbortedError without an abort';
  for (const wrong of [InvalidArgumentError, ProtocolError, ChecksumMismatchError, SourceMismatchError, ListenerError]) {
    if (error instanceof wrong) return `unexpected ${error.name}`;
  }
  if (faults.length === 0 && !aborted) return 'a failure without a fault';
  if (!Array.isArray(error.leftovers)) return 'error.leftovers is not a list';
  return undefined;
}

/** Runs one seeded parallel upload against `server` and classifies what happened. Never throws. */
export async function runParallelChaosUpload(
  server: LocalGcs,
  seed: number,
  timeLimitMs = DEFAULT_PARALLEL_TIME_LIMIT_MS,
): Promise<ParallelReport> {
  const plan = planParallelUpload(seed);
  const firstRecord = server.requests.length;
  for (const fault of plan.faults) server.inject(fault);
  const scope = plan.chaos === undefined ? undefined : server.addChaos({ ...plan.chaos, bucket: plan.bucket });
  const controller = new AbortController();
  let triggered = false;
  let stream: GcsResumableWritable | undefined;
  const abortNow = (): void => {
    if (triggered || stream === undefined || stream.destroyed) return;
    triggered = true;
    const how = plan.abort!.how;
    if (how === 'destroy') stream.destroy(new Error('caller destroyed the stream'));
    else if (how === 'destroy-silent') stream.destroy();
    else controller.abort();
  };
  const client = observingClient((request) => {
    const phase = plan.abort?.phase;
    if (phase === 'compose' && request.method === 'POST' && request.url.includes('/compose')) abortNow();
    if (phase === 'delete' && request.method === 'DELETE' && !request.url.includes('upload_id')) abortNow();
  });
  const report = (outcome: Outcome, detail: string, error?: unknown): ParallelReport => ({
    seed,
    outcome,
    faults: faultsOf(server, plan.bucket, firstRecord),
    detail,
    error,
    plan,
  });
  let limit: NodeJS.Timeout | undefined;
  try {
    stream = createGcsWriteStream({
      bucket: plan.bucket,
      name: plan.name,
      apiEndpoint: server.url,
      authClient: client,
      parallel: plan.parallel,
      partSize: plan.partSize,
      chunkSize: plan.chunkSize,
      retry: plan.retry,
      ...(plan.ifGenerationMatch0 ? { ifGenerationMatch: 0 } : {}),
      ...(plan.abort?.how === 'signal' ? { signal: controller.signal } : {}),
    });
    const events = { finish: 0, error: 0, firstError: undefined as unknown };
    stream.on('finish', () => (events.finish += 1));
    stream.on('error', (error: unknown) => {
      events.error += 1;
      events.firstError ??= error;
    });
    const closed = new Promise<'closed'>((resolve) => stream!.once('close', () => resolve('closed')));
    const timedOut = new Promise<'timeout'>((resolve) => {
      limit = setTimeout(() => resolve('timeout'), timeLimitMs);
    });
    const digest = createHash('sha256');
    const rng = createRng(seed ^ 0x51ed);
    const feed = async (): Promise<void> => {
      let pos = 0;
      while (pos < plan.size || (plan.abort?.phase === 'write' && pos === plan.abort.at)) {
        if (stream!.destroyed) return;
        if (plan.abort?.phase === 'write' && pos === plan.abort.at) {
          abortNow();
          return;
        }
        let n = Math.min(logUniform(rng, plan.maxWrite), plan.size - pos);
        if (plan.abort?.phase === 'write' && pos < plan.abort.at) n = Math.min(n, plan.abort.at - pos);
        const chunk = contentAt(plan.origin, pos, n);
        digest.update(chunk);
        pos += n;
        if (!stream!.write(chunk)) await Promise.race([new Promise<void>((resolve) => stream!.once('drain', () => resolve())), closed]);
        if (rng() < 0.05) await delay(randomInt(rng, 0, 2));
      }
      if (!stream!.destroyed) stream!.end();
    };
    void feed();
    if ((await Promise.race([closed, timedOut])) === 'timeout') {
      const state = `bytesAccepted=${stream.bytesAccepted} bytesCommitted=${stream.bytesCommitted}`;
      stream.destroy();
      return report('hung', `no close within ${timeLimitMs} ms (${state})`);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    const stored = server.getObject(plan.bucket, plan.name);
    const left = server
      .listObjects(plan.bucket)
      .map((object) => object.name)
      .filter((name) => name.startsWith(PREFIX))
      .sort();
    const leftovers = [...stream.leftovers].sort();
    const unlisted = left.filter((name) => !leftovers.includes(name));
    const expected = digest.digest('hex');
    const exact = stored !== undefined && stored.data.length === plan.size && sha256(stored.data) === expected;
    if (events.finish === 1 && events.error === 0) {
      if (triggered && plan.abort?.phase === 'write') return report('wrong-error', 'finish although aborted while writing');
      if (!exact) return report('corrupt', `finish but the stored object is ${stored === undefined ? 'absent' : 'not the source'}`);
      if (unlisted.length > 0 || left.length !== leftovers.length) {
        return report(
          'wrong-error',
          `temporary objects left ${JSON.stringify(left)} are not stream.leftovers ${JSON.stringify(leftovers)}`,
        );
      }
      return report('ok', triggered ? 'abort too late' : 'uploaded');
    }
    if (events.finish > 0 || events.error > 1) return report('wrong-error', `finish ${events.finish} times, error ${events.error} times`);
    if (unlisted.length > 0) return report('wrong-error', `temporary objects left and not listed as leftovers: ${unlisted.join(', ')}`);
    if (stream.object !== undefined) {
      // Aborted after the final compose: the object exists and must be exactly the source.
      if (!triggered) return report('wrong-error', 'stream.object is set after a failure without an abort');
      return exact ? report('failed-cleanly', 'abort after the compose: the object exists') : report('corrupt', 'late object differs');
    }
    if (stored !== undefined) return report('corrupt', `an object exists after ${describeError(events.firstError)}`);
    if (events.error === 0) {
      return triggered && plan.abort?.how === 'destroy-silent'
        ? report('failed-cleanly', 'destroyed silently')
        : report('wrong-error', 'closed without finish or error');
    }
    const problem = errorProblem(events.firstError, triggered, faultsOf(server, plan.bucket, firstRecord));
    if (problem !== undefined) return report('wrong-error', `${problem}: ${describeError(events.firstError)}`, events.firstError);
    return report('failed-cleanly', describeError(events.firstError), events.firstError);
  } catch (error) {
    return report('wrong-error', `the harness failed: ${String(error)}`, error);
  } finally {
    clearTimeout(limit);
    scope?.remove();
    for (const object of server.listObjects(plan.bucket)) server.deleteObject(plan.bucket, object.name);
  }
}

/** Faults that fired on requests to `bucket` (scripted and chaos), from request `from` of the log on. */
function faultsOf(server: LocalGcs, bucket: string, from: number): string[] {
  const out: string[] = [];
  const records = server.requests;
  for (let i = from; i < records.length; i++) {
    const record = records[i]!;
    if (record.bucket === bucket && record.fault !== undefined) out.push(record.fault);
  }
  return out;
}

/** Runs `uploads` seeded parallel uploads, `concurrency` at a time. */
export function runParallelChaos(options: {
  seed: number;
  uploads: number;
  concurrency: number;
  uploadsPerServer?: number;
  timeLimitMs?: number;
  onReport?: (report: ParallelReport, done: number) => void;
}): Promise<ChaosSummary<ParallelReport>> {
  return runSeeded({
    ...options,
    start: () => startLocalGcs(),
    runOne: (server, seed) => runParallelChaosUpload(server, seed, options.timeLimitMs),
  });
}

/** One line per bug, with the plan and how to replay it. */
export function parallelBugLines(summary: ChaosSummary<ParallelReport>): string[] {
  return seededBugLines(summary, (report) => describeParallelPlan(report.plan), '--parallel');
}
