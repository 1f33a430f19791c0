/**
 * The chaos engine of appendable objects, shared by `test/append-chaos.test.ts` (a bounded run) and
 * `npm run soak -- --append` (long runs): one seeded upload through `createGcsAppendStream` against the local
 * server's gRPC side, with the faults of its plan (append-plan.ts), classified by what the server holds.
 *
 * Every upload ends in one of:
 * - `ok`: `finish` (once, no `error`); the object holds exactly the source bytes, finalized iff the plan finalizes;
 * - `failed-cleanly`: `error` (once, no `finish`) with the `GcsUploadError` subclass that the faults that fired (or
 *   the abort) call for, or a silent `destroy()`; whatever the object holds is a prefix of the source and it is
 *   not finalized (an appendable object keeps what was persisted: it is not deleted on failure);
 * - `corrupt`: the object holds bytes that are not a prefix of the source, or fewer than a `flush()` or a
 *   checkpoint said were persisted;
 * - `hung`: no `close`, or a `flush()` that never settled, within the time limit;
 * - `wrong-error`: anything else (an untyped error, an unexpected class, both or neither of `finish`/`error`, ...).
 * The last three are bugs.
 */
import { crc32c } from '@node-rs/crc32';
import {
  createGcsAppendStream,
  CreateUnconfirmedError,
  GcsUploadError,
  GrpcStatusError,
  RetryExhaustedError,
  UploadAbortedError,
  type AppendableCheckpoint,
  type GcsAppendableWritable,
} from '../../src/index.js';
import { createRng, startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { describeAppendPlan, FATAL_STATUSES, planAppend, type AppendPlan } from './append-plan.js';
import { BUCKET, contentAt, describeError, logUniform, sha256 } from './chaos-upload.js';
import { runSeeded, seededBugLines, type ChaosSummary, type Outcome, type SeededReport } from './chaos-runner.js';

/** Time an upload may take from start to `close` before it counts as hung. */
export const DEFAULT_APPEND_TIME_LIMIT_MS = 15_000;

/** What happened to one append upload. */
export interface AppendReport extends SeededReport {
  /** The error the stream emitted, if any. */
  error: unknown;
  elapsedMs: number;
  plan: AppendPlan;
}

/** A `flush()` the writer called: bytes written before the call, and how it settled. */
interface FlushRecord {
  before: number;
  settled: Promise<void>;
  result?: number;
  error?: unknown;
}

/** What the stream emitted and what the writer did. */
interface Watch {
  finish: number;
  error: number;
  firstError: unknown;
  closed: Promise<void>;
  checkpoints: AppendableCheckpoint[];
  generations: string[];
  flushes: FlushRecord[];
  /** Bytes handed to `write()`. */
  written: number;
  /** Whether the plan's abort was carried out, and the error `destroy(err)` was given. */
  aborted: boolean;
  destroyError: Error | undefined;
}

function watch(stream: GcsAppendableWritable): Watch {
  const w: Watch = {
    finish: 0,
    error: 0,
    firstError: undefined,
    closed: new Promise((resolve) => stream.once('close', () => resolve())),
    checkpoints: [],
    generations: [],
    flushes: [],
    written: 0,
    aborted: false,
    destroyError: undefined,
  };
  stream.on('finish', () => (w.finish += 1));
  stream.on('error', (error: unknown) => {
    w.error += 1;
    if (w.error === 1) w.firstError = error;
  });
  stream.on('checkpoint', (checkpoint: AppendableCheckpoint) => w.checkpoints.push(checkpoint));
  stream.on('generation', (generation: string) => w.generations.push(generation));
  return w;
}

function flush(stream: GcsAppendableWritable, w: Watch): FlushRecord {
  const record: FlushRecord = { before: w.written, settled: Promise.resolve() };
  record.settled = stream.flush().then(
    (size) => void (record.result = size),
    (error: unknown) => void (record.error = error),
  );
  w.flushes.push(record);
  return record;
}

/** Writes the plan's content with its flushes, then ends the stream, unless the abort comes first. */
async function feed(plan: AppendPlan, stream: GcsAppendableWritable, w: Watch, controller: AbortController): Promise<void> {
  const rng = createRng(plan.seed ^ 0x2545f491);
  const { size, abort } = plan;
  while (w.written < size) {
    if (stream.destroyed) return;
    if (abort !== undefined && w.written === abort.at) {
      if (abort.duringFlush) flush(stream, w);
      w.aborted = true;
      if (abort.how === 'signal') controller.abort();
      else if (abort.how === 'destroy-silent') stream.destroy();
      else stream.destroy((w.destroyError = new Error(`caller destroyed the stream at byte ${w.written}`)));
      return;
    }
    let n = Math.min(logUniform(rng, plan.maxWrite), size - w.written);
    if (abort !== undefined && w.written < abort.at) n = Math.min(n, abort.at - w.written);
    const chunk = contentAt(plan.origin, w.written, n);
    w.written += n;
    if (!stream.write(chunk)) await drained(stream, w);
    if (rng() < plan.flushChance) {
      const record = flush(stream, w);
      if (rng() < plan.awaitFlushChance) await Promise.race([record.settled, w.closed]);
    }
    if (plan.pauseChance > 0 && rng() < plan.pauseChance) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!stream.destroyed) stream.end();
}

function drained(stream: GcsAppendableWritable, w: Watch): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      resolve();
    };
    stream.on('drain', done);
    void w.closed.then(done);
  });
}

/** A fault that fired on one of the object's streams: `create break`, `append status UNAVAILABLE`, ... */
function faultsOf(server: LocalGcs, name: string): string[] {
  return server.grpc.streams.filter((s) => s.object === name && s.fault !== undefined).map((s) => `${s.kind} ${s.fault}`);
}

/** Why the stream's error is not one that the faults that fired (or the abort) call for, if it is not. */
function errorProblem(error: unknown, faults: readonly string[], plan: AppendPlan, w: Watch): string | undefined {
  if (!(error instanceof GcsUploadError)) return 'the error is not a GcsUploadError';
  if (error instanceof UploadAbortedError) {
    if (!w.aborted || plan.abort?.how === 'destroy-silent') return 'UploadAbortedError without an abort';
    if (plan.abort?.how === 'destroy' && error.cause !== w.destroyError) return "UploadAbortedError whose cause is not destroy()'s error";
    return undefined;
  }
  if (error instanceof GrpcStatusError) {
    if (error.retryable) return `a retryable gRPC status surfaced unretried`;
    return faults.some((f) => f.endsWith(`status ${error.grpcStatus}`)) ? undefined : `gRPC status ${error.grpcStatus} without its fault`;
  }
  if (error instanceof RetryExhaustedError) {
    if (!(error.cause instanceof GcsUploadError) || !error.cause.retryable) return 'RetryExhaustedError whose cause is not retryable';
    // Each failed attempt needs a fault of its own (a redirect is not a failure).
    const counted = faults.filter((f) => !f.endsWith('redirect')).length;
    return counted >= plan.retry.maxAttempts
      ? undefined
      : `RetryExhaustedError after ${counted} faults (maxAttempts ${plan.retry.maxAttempts})`;
  }
  if (error instanceof CreateUnconfirmedError) {
    // Only a create that happened but whose answer was lost leaves the generation unknown.
    const lost = faults.some((f) => f === 'create break' || f === 'create stall');
    return plan.createOnly && lost ? undefined : 'CreateUnconfirmedError without a lost create under ifGenerationMatch';
  }
  return `unexpected ${error.name} (${error.code})`;
}

/** Whether `data` is the first `data.length` bytes of the plan's source. */
function isSourcePrefix(plan: AppendPlan, data: Buffer, written: number): boolean {
  return data.length <= written && data.equals(contentAt(plan.origin, 0, data.length));
}

/** What is wrong with what the object holds, against the flushes and checkpoints the stream reported. */
function heldProblem(server: LocalGcs, plan: AppendPlan, w: Watch): { outcome: Outcome; detail: string } | undefined {
  const data = server.getObject(BUCKET, plan.name)?.data ?? Buffer.alloc(0);
  const state = server.grpc.appendable(BUCKET, plan.name);
  if (!isSourcePrefix(plan, data, w.written)) {
    return { outcome: 'corrupt', detail: `the object holds ${data.length} bytes that are not a prefix of the ${w.written} written` };
  }
  for (const record of w.flushes) {
    if (record.error !== undefined && !(record.error instanceof GcsUploadError)) {
      return { outcome: 'wrong-error', detail: `flush() rejected with an untyped ${describeError(record.error)}` };
    }
    if (record.result === undefined) continue;
    if (record.result < record.before || record.result > data.length) {
      const detail = `flush() resolved with ${record.result} after ${record.before} bytes were written, and the object holds ${data.length}`;
      return { outcome: 'corrupt', detail };
    }
  }
  if (w.generations.length > 1 || (w.generations.length === 1 && w.generations[0] !== state?.generation)) {
    return {
      outcome: 'wrong-error',
      detail: `'generation' emitted ${JSON.stringify(w.generations)}; the object's is ${state?.generation}`,
    };
  }
  for (const checkpoint of w.checkpoints) {
    const { bytesCommitted, generation } = checkpoint;
    if (bytesCommitted > data.length || generation !== state?.generation) {
      const detail = `a checkpoint of ${bytesCommitted} bytes (generation ${generation}); the object holds ${data.length} (generation ${state?.generation})`;
      return { outcome: 'corrupt', detail };
    }
    if (checkpoint.crc32c !== crc32c(data.subarray(0, bytesCommitted)) >>> 0) {
      return { outcome: 'corrupt', detail: `the checkpoint of ${bytesCommitted} bytes has a wrong crc32c` };
    }
  }
  return undefined;
}

/** What is wrong with a `finish` whose object holds the right bytes: what the stream said, or a refusal it hid. */
function successProblem(
  plan: AppendPlan,
  stream: GcsAppendableWritable,
  w: Watch,
  generation: string,
  faults: string[],
): string | undefined {
  const refused = faults.find((f) => FATAL_STATUSES.some((status) => f.endsWith(`status ${status}`)));
  if (refused !== undefined) return `finish although the server refused a stream (${refused})`;
  if (w.generations.length !== 1) return `finish, but 'generation' was emitted ${w.generations.length} times`;
  const object = stream.object;
  if (plan.finalize ? object?.generation !== generation || object.size !== plan.size : object !== undefined) {
    return `stream.object is ${JSON.stringify(object)}; the object's generation is ${generation}`;
  }
  // An object left appendable is taken over from its last checkpoint, which must hold every byte.
  const last = w.checkpoints.at(-1);
  if (!plan.finalize && last?.bytesCommitted !== plan.size) return `left appendable, but the last checkpoint is ${JSON.stringify(last)}`;
  return undefined;
}

/** Classifies a stream that closed and whose writer and flushes settled. */
function classify(server: LocalGcs, plan: AppendPlan, stream: GcsAppendableWritable, w: Watch): { outcome: Outcome; detail: string } {
  const problem = heldProblem(server, plan, w);
  if (problem !== undefined) return problem;
  const stored = server.getObject(BUCKET, plan.name);
  const state = server.grpc.appendable(BUCKET, plan.name);
  const faults = faultsOf(server, plan.name);
  if (w.finish === 1 && w.error === 0) {
    if (w.aborted) return { outcome: 'wrong-error', detail: 'finish although the upload was aborted before its end' };
    if (stored === undefined || state === undefined) return { outcome: 'corrupt', detail: 'finish but the server holds no object' };
    if (stored.data.length !== plan.size || sha256(stored.data) !== sha256(contentAt(plan.origin, 0, plan.size))) {
      return { outcome: 'corrupt', detail: `finish but the object holds ${stored.data.length} of the ${plan.size} bytes` };
    }
    if (state.finalized !== plan.finalize) return { outcome: 'corrupt', detail: `finish, finalized=${state.finalized}` };
    const wrong = successProblem(plan, stream, w, state.generation, faults);
    if (wrong !== undefined) return { outcome: 'wrong-error', detail: wrong };
    return { outcome: 'ok', detail: faults.length > 0 ? 'recovered' : 'no faults' };
  }
  if (state?.finalized === true) return { outcome: 'wrong-error', detail: 'the object was finalized although the stream did not finish' };
  if (w.finish === 0 && w.error === 0 && w.aborted && plan.abort?.how === 'destroy-silent') {
    return { outcome: 'failed-cleanly', detail: 'destroyed without an error' };
  }
  if (w.finish === 0 && w.error === 1) {
    const error = w.firstError;
    const wrong = errorProblem(error, faults, plan, w);
    if (wrong !== undefined) return { outcome: 'wrong-error', detail: `${wrong}: ${describeError(error)}` };
    const committed = (error as GcsUploadError).bytesCommitted;
    if (committed !== undefined && committed > (stored?.data.length ?? 0)) {
      return {
        outcome: 'corrupt',
        detail: `the error says ${committed} bytes were committed; the object holds ${stored?.data.length ?? 0}`,
      };
    }
    return { outcome: 'failed-cleanly', detail: describeError(error) };
  }
  return { outcome: 'wrong-error', detail: `finish emitted ${w.finish} times and error ${w.error} times (${describeError(w.firstError)})` };
}

/** Runs one seeded append upload against `server` (started with `grpc: true`) and classifies it. Never throws. */
export async function runAppendChaosUpload(
  server: LocalGcs,
  seed: number,
  timeLimitMs = DEFAULT_APPEND_TIME_LIMIT_MS,
): Promise<AppendReport> {
  const plan = planAppend(seed);
  const started = Date.now();
  for (const fault of plan.faults) {
    server.grpc.inject({ match: { ...fault.match, bucket: BUCKET, object: plan.name }, action: fault.action, times: fault.times });
  }
  const controller = new AbortController();
  const report = (outcome: Outcome, detail: string, error?: unknown): AppendReport => ({
    seed,
    outcome,
    faults: faultsOf(server, plan.name),
    error,
    detail,
    elapsedMs: Date.now() - started,
    plan,
  });
  let stream: GcsAppendableWritable;
  try {
    stream = createGcsAppendStream({
      bucket: BUCKET,
      name: plan.name,
      grpcEndpoint: server.grpc.address,
      finalize: plan.finalize,
      retry: plan.retry,
      ...(plan.createOnly ? { ifGenerationMatch: 0 } : {}),
      ...(plan.maxUncommittedMs === undefined ? {} : { maxUncommittedMs: plan.maxUncommittedMs }),
      ...(plan.abort?.how === 'signal' ? { signal: controller.signal } : {}),
    });
  } catch (error) {
    return report('wrong-error', `createGcsAppendStream threw: ${describeError(error)}`, error);
  }
  const w = watch(stream);
  let limit: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (limit = setTimeout(() => resolve('timeout'), timeLimitMs)));
  const fed = feed(plan, stream, w, controller).then(
    () => 'fed' as const,
    (error: unknown) => new Error(`feeding the stream failed: ${String(error)}`),
  );
  try {
    const ended = await Promise.race([w.closed.then(() => 'closed' as const), timedOut]);
    if (ended === 'timeout') {
      const state = `written=${w.written} bytesCommitted=${stream.bytesCommitted} finish=${w.finish} error=${w.error}`;
      stream.destroy();
      return report('hung', `no close within ${timeLimitMs} ms (${state})`, w.firstError);
    }
    const settled = await Promise.race([Promise.all([fed, ...w.flushes.map((f) => f.settled)]), timedOut]);
    if (settled === 'timeout') return report('hung', 'the stream closed but a write or a flush() never settled', w.firstError);
    if (settled[0] instanceof Error) return report('wrong-error', settled[0].message, w.firstError);
    // Give a late `finish`/`error` (after `close`: itself a bug) a chance to show up.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const { outcome, detail } = classify(server, plan, stream, w);
    return report(outcome, detail, w.firstError);
  } finally {
    clearTimeout(limit);
    // Keep the server's memory flat over long runs.
    server.deleteObject(BUCKET, plan.name);
  }
}

/** Options of {@link runAppendChaos}. */
export interface AppendChaosOptions {
  /** Seed of the first upload; upload i has seed `seed + i`. */
  seed: number;
  uploads: number;
  concurrency: number;
  /** Start a fresh server after this many uploads; default: one server. */
  uploadsPerServer?: number;
  timeLimitMs?: number;
  onReport?: (report: AppendReport, done: number) => void;
}

/** Runs `uploads` seeded append uploads, `concurrency` at a time, and totals their outcomes. */
export function runAppendChaos(options: AppendChaosOptions): Promise<ChaosSummary<AppendReport>> {
  return runSeeded({
    ...options,
    start: () => startLocalGcs({ grpc: true }),
    runOne: (server, seed) => runAppendChaosUpload(server, seed, options.timeLimitMs),
  });
}

/** One line per bug: the seed, the outcome, what was wrong, the plan, and how to replay it. */
export function appendBugLines(summary: ChaosSummary<AppendReport>): string[] {
  return seededBugLines(summary, (report) => describeAppendPlan(report.plan), '--append');
}
