/**
 * The chaos engine shared by `test/chaos.test.ts` (a bounded run) and `test/soak/run.ts` (long runs): one seeded
 * random upload against the local server, and a runner for many of them.
 *
 * Everything random about an upload (size, write sizes, chunk size, buffer, pauses, retry settings, the fault
 * schedule, an abort) derives from its seed, so a failing upload replays from its seed alone. Faults are confined to
 * the upload's own object (scripted rules match its name; its chaos is a scope of the server), so concurrency does
 * not change what fires. What cannot be replayed exactly is timing: backoff jitter, and whether a stall outlasts
 * the stall timeout on a loaded machine.
 *
 * Every upload ends in one of:
 * - `ok`: `finish` (once, no `error`) and the stored object is byte-identical (SHA-256) to what was written;
 * - `failed-cleanly`: `error` (once, no `finish`) with the `GcsUploadError` subclass that the faults that fired (or
 *   the abort) call for, and no object of that name; a silent `destroy()` emits neither and leaves no object;
 * - `corrupt`: an object exists that should not, or differs from what was written;
 * - `hung`: no `close` within the time limit;
 * - `wrong-error`: anything else (an unexpected error class, both or neither of `finish`/`error`, ...).
 * The last three are bugs.
 */
import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ChecksumMismatchError,
  createGcsWriteStream,
  GcsUploadError,
  MemoryPool,
  RetryExhaustedError,
  SessionExpiredError,
  UploadAbortedError,
  type GcsResumableWritable,
  type RetryOptions,
  type Validation,
} from '../../src/index.js';
import {
  crc32cToBase64,
  createRng,
  randomInt,
  startLocalGcs,
  type ChaosKind,
  type FaultAction,
  type FaultKind,
  type FaultMatch,
  type LocalGcs,
  type Rng,
  type ScopedChaosOptions,
} from '../../src/testing/index.js';
import { runSeeded, seededBugLines, type ChaosSummary as RunnerSummary, type Outcome, type SeededReport } from './chaos-runner.js';

export { isBug, summaryLine, type Outcome } from './chaos-runner.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
const ALIGNMENT = 256 * KiB;
/** Largest object the engine generates (plus one byte, for the k*chunk+1 sizes). */
export const MAX_SIZE = 24 * MiB;
export const BUCKET = 'chaos-bucket';
/** Time an upload may take from start to `close` before it counts as hung. */
export const DEFAULT_TIME_LIMIT_MS = 20_000;

// ---------------------------------------------------------------------------------------------------------------
// Content

// A random block of prime length: byte p of an upload is BLOCK[(origin + p) % length]. A chunk sent at the wrong
// offset (offsets differ by multiples of 256 KiB, never of the prime) or twice always changes the object.
export const BLOCK_LENGTH = 1_048_573;
const BLOCK = (() => {
  const rng = createRng(0x5eed);
  const out = Buffer.allocUnsafe(BLOCK_LENGTH);
  for (let i = 0; i < BLOCK_LENGTH; i += 4) out.writeUInt32LE(Math.floor(rng() * 0x1_0000_0000), Math.min(i, BLOCK_LENGTH - 4));
  return out;
})();

/** Copies `n` content bytes of the upload whose content starts at `origin`, from object offset `pos`, into `out`. */
function fillContent(out: Buffer, origin: number, pos: number, n: number): void {
  let written = 0;
  while (written < n) {
    const start = (origin + pos + written) % BLOCK_LENGTH;
    const take = Math.min(n - written, BLOCK_LENGTH - start);
    BLOCK.copy(out, written, start, start + take);
    written += take;
  }
}

/** A fresh buffer of `n` content bytes from object offset `pos` (as a real source would hand over). */
export function contentAt(origin: number, pos: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  fillContent(out, origin, pos, n);
  return out;
}

/** SHA-256 (hex) of the first `size` content bytes of an upload. */
export function contentDigest(origin: number, size: number): string {
  const hash = createHash('sha256');
  for (let pos = 0; pos < size; pos += 4 * MiB) hash.update(contentAt(origin, pos, Math.min(4 * MiB, size - pos)));
  return hash.digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------
// The plan: everything an upload does, derived from its seed

/** How an upload is stopped before its end, at byte `at` of the source. */
export interface AbortPlan {
  at: number;
  /** `destroy`: `destroy(err)`; `destroy-silent`: `destroy()`; `signal`: the `signal` option aborts; `source-error`: the piped source fails. */
  how: 'destroy' | 'destroy-silent' | 'signal' | 'source-error';
}

/** A scripted fault of the plan; the upload's object name is added to `match` when it is injected. */
export interface PlannedFault {
  match: Omit<FaultMatch, 'object'>;
  action: FaultAction;
}

/** One seeded upload, fully decided before it starts. */
export interface UploadPlan {
  seed: number;
  name: string;
  size: number;
  /** Offset of the upload's content in the random block (see `contentAt`). */
  origin: number;
  chunkSize: number;
  bufferChunks: number;
  validation: Exclude<Validation, false>;
  retry: Required<Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'stallTimeoutMs' | 'maxAttempts'>>;
  /**
   * `pipeline`: a `Readable` piped in; `write`: `write()` with backpressure (`drain`), fresh buffers;
   * `reuse`: one scratch buffer per upload, overwritten as soon as each write's callback fires (the stream must
   * have copied it).
   */
  writer: 'pipeline' | 'write' | 'reuse';
  /** Writes are 1 B .. `maxWrite` bytes, log-uniformly distributed. */
  maxWrite: number;
  /** Chance, after each write, of an async pause (`setImmediate` or a 0-2 ms timer). */
  pauseChance: number;
  /** Scoped chaos for the upload's requests, if any. */
  chaos: Omit<ScopedChaosOptions, 'object' | 'bucket'> | undefined;
  faults: PlannedFault[];
  abort: AbortPlan | undefined;
  /**
   * Request sizing: adaptive (the default: timing decides between one chunk and the whole buffer per request, so a
   * replay may shape requests differently) or fixed to one chunk (requests, and so the faults that fire, depend on
   * the seed alone).
   */
  adaptiveRequests: boolean;
}

const CHUNK_SIZES = [ALIGNMENT, 2 * ALIGNMENT, 4 * ALIGNMENT] as const;
const RETRYABLE = [408, 429, 500, 502, 503, 504] as const;

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[randomInt(rng, 0, items.length - 1)]!;
}

/** A log-uniform integer in [1, max]: small values as likely per octave as large ones. */
export function logUniform(rng: Rng, max: number): number {
  return Math.max(1, Math.min(max, Math.floor(Math.exp(rng() * Math.log(max + 1)))));
}

/** The mean of {@link logUniform} over [1, max], roughly. */
export function meanWrite(max: number): number {
  return max / Math.log(max + 1);
}

function planSize(rng: Rng, chunkSize: number): number {
  const roll = rng();
  const maxChunks = Math.floor(MAX_SIZE / chunkSize);
  // Sizes are log-uniform as often as uniform, so that runs are quick while still reaching MAX_SIZE.
  if (roll < 0.35) {
    // On a chunk boundary or one byte either side: the final request is empty (bytes */TOTAL) or a single byte.
    const k = rng() < 0.5 ? randomInt(rng, 0, maxChunks) : logUniform(rng, maxChunks + 1) - 1;
    const size = k * chunkSize + pick(rng, [0, 0, -1, 1]);
    return Math.max(0, size);
  }
  if (roll < 0.55) return randomInt(rng, 0, 2 * chunkSize);
  if (roll < 0.6) return 0;
  if (roll < 0.8) return logUniform(rng, MAX_SIZE);
  return randomInt(rng, 0, MAX_SIZE);
}

/** An offset at which a scripted fault fires: a chunk boundary, one byte off one, or anywhere. */
function faultOffset(rng: Rng, size: number, chunkSize: number): number {
  const chunks = Math.floor(size / chunkSize);
  const roll = rng();
  if (roll < 0.4) return randomInt(rng, 0, chunks) * chunkSize;
  if (roll < 0.6) return Math.max(0, randomInt(rng, 1, chunks + 1) * chunkSize - 1);
  if (roll < 0.7) return size; // the final request (of an exact multiple: the empty bytes */TOTAL)
  return randomInt(rng, 0, Math.max(0, size - 1));
}

function planFault(rng: Rng, size: number, chunkSize: number, stallTimeoutMs: number): PlannedFault {
  const times = rng() < 0.75 ? 1 : randomInt(rng, 2, 3);
  // Where: a chunk or final request (by offset or by index), the open, a status query (only sent during recovery)
  // or the cancel (only sent after a failure).
  const where = rng();
  let match: Omit<FaultMatch, 'object'>;
  let kind: FaultKind;
  if (where < 0.45) {
    kind = 'chunk';
    match = { kind, offset: faultOffset(rng, size, chunkSize), times };
  } else if (where < 0.55) {
    kind = 'chunk';
    match = { kind, nth: randomInt(rng, 0, Math.ceil(size / chunkSize) + 1), times };
  } else if (where < 0.7) {
    kind = 'final';
    match = { kind, times };
  } else if (where < 0.8) {
    kind = 'open';
    match = { kind, times };
  } else if (where < 0.93) {
    kind = 'query';
    match = { kind, nth: randomInt(rng, 0, 3), times };
  } else {
    kind = 'cancel';
    match = { kind, times };
  }
  const roll = rng();
  let action: FaultAction;
  if (roll < 0.16) {
    action = rng() < 0.5 ? { type: 'reset' } : { type: 'reset', afterBytes: randomInt(rng, 0, chunkSize) };
  } else if (roll < 0.36) {
    action = { type: 'status', status: pick(rng, RETRYABLE), when: rng() < 0.5 ? 'before' : 'after' };
  } else if (roll < 0.5) {
    const aligned = rng() < 0.5;
    action = {
      type: 'partial',
      bytes: aligned ? randomInt(rng, 0, chunkSize / ALIGNMENT - 1) * ALIGNMENT : randomInt(rng, 0, chunkSize - 1),
    };
  } else if (roll < 0.64) {
    action = { type: 'drop-response' };
  } else if (roll < 0.76) {
    // Mostly shorter than the stall timeout (the request just takes longer), sometimes longer (it is abandoned).
    action = { type: 'stall', ms: rng() < 0.6 ? randomInt(rng, 1, 50) : randomInt(rng, stallTimeoutMs + 50, stallTimeoutMs + 250) };
  } else if (roll < 0.82) {
    action = { type: 'latency', ms: randomInt(rng, 1, 30) };
  } else if (roll < 0.9 && kind !== 'open') {
    action = { type: 'expire', status: rng() < 0.5 ? 404 : 410 };
  } else if (roll < 0.95 && (kind === 'chunk' || kind === 'final')) {
    action = { type: 'corrupt', at: randomInt(rng, 0, Math.max(0, Math.min(size, chunkSize) - 1)) };
  } else {
    action = { type: 'status', status: 503 };
  }
  return { match, action };
}

/** Derives the whole upload from its seed. */
export function planUpload(seed: number): UploadPlan {
  const rng = createRng(seed);
  const chunkSize = pick(rng, CHUNK_SIZES);
  // Up to 16 chunks: windows that grow past two chunks (whole-window and pipelined requests) meet the faults too.
  const bufferChunks = pick(rng, [1, 2, 3, 3, 8, 16]);
  const size = planSize(rng, chunkSize);
  const origin = randomInt(rng, 0, BLOCK_LENGTH - 1);
  const retry = {
    initialDelayMs: randomInt(rng, 0, 2),
    maxDelayMs: 5,
    stallTimeoutMs: randomInt(rng, 300, 500),
    maxAttempts: randomInt(rng, 8, 12),
  };
  const writer = pick(rng, ['pipeline', 'write', 'write', 'reuse'] as const);
  // Enough bytes per write on average that an object takes at most ~20,000 writes, and pauses (a timer of 0-2 ms
  // lasts about 1 ms) that add up to well under a second: the run tests the stream, not the clock.
  let maxWrite = logUniform(rng, 2 * MiB);
  while (maxWrite < 2 * MiB && size / meanWrite(maxWrite) > 20_000) maxWrite *= 2;
  maxWrite = Math.min(maxWrite, 2 * MiB);
  const writes = Math.max(1, size / meanWrite(maxWrite));
  const pauseChance = pick(rng, [0, 0, 0.05, 0.3]) * Math.min(1, 300 / writes);
  const validation = pick(rng, ['crc32c', 'crc32c', 'md5', 'both'] as const);

  let chaos: UploadPlan['chaos'];
  if (rng() < 0.6) {
    const kinds: ChaosKind[] = ['reset', 'status-before', 'status-after', 'partial', 'drop-response', 'stall'];
    if (rng() < 0.12) kinds.push('expire');
    const long = rng() < 0.3;
    chaos = {
      seed: randomInt(rng, 1, 0x7fff_ffff),
      probability: pick(rng, [0.02, 0.05, 0.1, 0.15, 0.25]),
      kinds,
      unaligned: rng() < 0.5,
      statuses: [...RETRYABLE],
      stallMinMs: 1,
      // Some stalls outlast the stall timeout, so that requests are abandoned and retried.
      stallMaxMs: long ? retry.stallTimeoutMs + 150 : 40,
      maxFaults: randomInt(rng, 4, 30),
    };
  }
  const faults: PlannedFault[] = [];
  const scripted = chaos === undefined ? randomInt(rng, 1, 4) : randomInt(rng, 0, 2);
  for (let i = 0; i < scripted; i++) faults.push(planFault(rng, size, chunkSize, retry.stallTimeoutMs));

  let abort: AbortPlan | undefined;
  if (rng() < 0.12) {
    abort = {
      at: randomInt(rng, 0, Math.max(0, size - 1)),
      how: pick(rng, ['destroy', 'destroy-silent', 'signal', 'source-error'] as const),
    };
  }
  const adaptiveRequests = rng() < 0.5;
  return {
    seed,
    name: `chaos/${seed}`,
    size,
    origin,
    chunkSize,
    bufferChunks,
    validation,
    retry,
    writer,
    maxWrite,
    pauseChance,
    chaos,
    faults,
    abort,
    adaptiveRequests,
  };
}

/** A one-line description of a plan, for failure reports. */
export function describePlan(plan: UploadPlan): string {
  const faults = plan.faults.map((fault) => `${JSON.stringify(fault.match)}->${JSON.stringify(fault.action)}`).join(' ');
  return (
    `size=${plan.size} chunk=${plan.chunkSize / KiB}KiB buffers=${plan.bufferChunks} writer=${plan.writer} ` +
    `maxWrite=${plan.maxWrite} validation=${plan.validation} retry=${JSON.stringify(plan.retry)} ` +
    `chaos=${plan.chaos ? `p${plan.chaos.probability}/${(plan.chaos.kinds ?? []).join(',')}/stall<=${plan.chaos.stallMaxMs}` : 'none'} ` +
    `faults=[${faults}] abort=${plan.abort ? `${plan.abort.how}@${plan.abort.at}` : 'none'} adaptive=${plan.adaptiveRequests}`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Running one upload

/** What happened to one upload. */
export interface UploadReport extends SeededReport {
  /** The error the stream emitted, if any. */
  error: unknown;
  elapsedMs: number;
  plan: UploadPlan;
}

interface Events {
  finish: number;
  error: number;
  firstError: unknown;
  closed: Promise<void>;
  isClosed: () => boolean;
}

function watch(stream: GcsResumableWritable): Events {
  const events: Events = { finish: 0, error: 0, firstError: undefined, closed: Promise.resolve(), isClosed: () => false };
  let closed = false;
  stream.on('finish', () => {
    events.finish += 1;
  });
  stream.on('error', (error: unknown) => {
    events.error += 1;
    if (events.error === 1) events.firstError = error;
  });
  events.closed = new Promise((resolve) =>
    stream.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  events.isClosed = () => closed;
  return events;
}

/** Feeds the upload's content into the stream according to the plan; returns whether the abort was triggered. */
async function feed(
  plan: UploadPlan,
  stream: GcsResumableWritable,
  events: Events,
  controller: AbortController,
  digest: ReturnType<typeof createHash>,
): Promise<boolean> {
  const rng = createRng(plan.seed ^ 0x2545f491);
  const { size, origin, abort } = plan;
  let triggered = false;
  const nextLength = (pos: number): number => {
    let n = Math.min(logUniform(rng, plan.maxWrite), size - pos);
    if (abort !== undefined && pos < abort.at) n = Math.min(n, abort.at - pos);
    return n;
  };
  const pause = async (): Promise<void> => {
    if (plan.pauseChance === 0 || rng() >= plan.pauseChance) return;
    if (rng() < 0.5) await new Promise<void>((resolve) => setImmediate(resolve));
    else await delay(randomInt(rng, 0, 2));
  };
  /** Carries out the abort (if it is due at `pos` and the stream is still alive); true if it was. */
  const abortAt = (pos: number): boolean => {
    if (abort === undefined || pos !== abort.at || stream.destroyed) return false;
    triggered = true;
    if (abort.how === 'destroy') stream.destroy(new Error(`caller destroyed the stream at byte ${pos}`));
    else if (abort.how === 'destroy-silent') stream.destroy();
    else if (abort.how === 'signal') controller.abort();
    return true;
  };

  if (plan.writer === 'pipeline') {
    async function* source(): AsyncGenerator<Buffer> {
      let pos = 0;
      while (pos < size || (abort !== undefined && pos === abort.at)) {
        if (stream.destroyed) return;
        if (abort !== undefined && pos === abort.at) {
          if (abort.how === 'source-error') {
            triggered = true;
            throw new Error(`source failed at byte ${pos}`);
          }
          abortAt(pos);
          await events.closed;
          return;
        }
        const n = nextLength(pos);
        const chunk = contentAt(origin, pos, n);
        digest.update(chunk);
        pos += n;
        yield chunk;
        await pause();
      }
    }
    await pipeline(Readable.from(source(), { highWaterMark: 2 }), stream).catch(() => undefined);
    return triggered;
  }

  const scratch = plan.writer === 'reuse' ? Buffer.allocUnsafe(Math.min(plan.maxWrite, Math.max(1, size))) : undefined;
  let pos = 0;
  while (pos < size || (abort !== undefined && pos === abort.at)) {
    if (stream.destroyed) return triggered;
    if (abort !== undefined && pos === abort.at) {
      if (abort.how === 'source-error') {
        // What `pipeline` does when the source fails.
        triggered = true;
        stream.destroy(new Error(`source failed at byte ${pos}`));
      } else {
        abortAt(pos);
      }
      return triggered;
    }
    const n = nextLength(pos);
    if (scratch !== undefined) {
      fillContent(scratch, origin, pos, n);
      const view = scratch.subarray(0, n);
      digest.update(view);
      pos += n;
      // The callback fires once the bytes are copied; then the scratch buffer is overwritten with the next write.
      const written = new Promise<void>((resolve) => stream.write(view, () => resolve()));
      await Promise.race([written, events.closed]);
    } else {
      const chunk = contentAt(origin, pos, n);
      digest.update(chunk);
      pos += n;
      if (!stream.write(chunk)) await drained(stream, events);
    }
    await pause();
  }
  if (!stream.destroyed) stream.end();
  return triggered;
}

function drained(stream: GcsResumableWritable, events: Events): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      resolve();
    };
    stream.on('drain', done);
    void events.closed.then(done);
  });
}

/** The error classes that the faults that fired (and the abort) allow, or why an error is not one of them. */
function errorProblem(error: unknown, faults: readonly string[], aborted: boolean, plan: UploadPlan): string | undefined {
  if (!(error instanceof GcsUploadError)) return `the error is not a GcsUploadError: ${String(error)}`;
  if (error instanceof UploadAbortedError) return aborted ? undefined : 'UploadAbortedError without an abort';
  if (error instanceof SessionExpiredError) {
    return faults.includes(`expire ${error.status}`)
      ? undefined
      : `SessionExpiredError ${error.status} without an expire fault of that status`;
  }
  if (error instanceof ChecksumMismatchError) {
    return faults.some((fault) => fault.startsWith('corrupt')) ? undefined : 'ChecksumMismatchError without a corrupt fault';
  }
  if (error instanceof RetryExhaustedError) {
    if (!(error.cause instanceof GcsUploadError) || !error.cause.retryable)
      return 'RetryExhaustedError whose cause is not a retryable GcsUploadError';
    // Each failed attempt needs a fault of its own: fewer faults than attempts means a fault was counted twice.
    const counted = faults.filter((fault) => canFailAttempt(fault, plan)).length;
    return counted >= plan.retry.maxAttempts
      ? undefined
      : `RetryExhaustedError after only ${counted} faults (maxAttempts ${plan.retry.maxAttempts})`;
  }
  return `unexpected ${error.name} (${error.code})`;
}

/** Whether a fault can make an attempt fail (latency cannot; a short stall only delays the answer). */
function canFailAttempt(fault: string, plan: UploadPlan): boolean {
  if (fault.startsWith('latency')) return false;
  const stall = /^stall (\d+)ms$/.exec(fault);
  // A stall close to the timeout may or may not be abandoned, depending on load: count it.
  return stall === null || Number(stall[1]) >= plan.retry.stallTimeoutMs / 2;
}

/** Runs one seeded upload against `server` and classifies what happened. Never throws. */
export async function runChaosUpload(
  server: LocalGcs,
  seed: number,
  timeLimitMs = DEFAULT_TIME_LIMIT_MS,
  memory?: MemoryPool,
): Promise<UploadReport> {
  const plan = planUpload(seed);
  const started = Date.now();
  const firstRecord = server.requests.length;
  for (const fault of plan.faults) server.inject({ match: { ...fault.match, object: plan.name }, action: fault.action });
  const scope = plan.chaos === undefined ? undefined : server.addChaos({ ...plan.chaos, object: plan.name });
  const controller = new AbortController();
  let stream: GcsResumableWritable;
  try {
    stream = createGcsWriteStream({
      bucket: BUCKET,
      name: plan.name,
      apiEndpoint: server.url,
      chunkSize: plan.chunkSize,
      bufferChunks: plan.bufferChunks,
      adaptiveRequests: plan.adaptiveRequests,
      validation: plan.validation,
      retry: plan.retry,
      ...(memory === undefined ? {} : { memory }),
      ...(plan.abort?.how === 'signal' ? { signal: controller.signal } : {}),
    });
  } catch (error) {
    scope?.remove();
    const detail = `createGcsWriteStream threw: ${describeError(error)}`;
    return { seed, outcome: 'wrong-error', faults: [], error, detail, elapsedMs: Date.now() - started, plan };
  }
  const events = watch(stream);
  const digest = createHash('sha256');
  let limit: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    limit = setTimeout(() => resolve('timeout'), timeLimitMs);
  });
  const fed = feed(plan, stream, events, controller, digest).catch((error: unknown) => {
    // The feeder itself must not fail; if it does, that is reported as a bug of the harness.
    throw new Error(`feeding the stream failed: ${String(error)}`);
  });
  const report = (outcome: Outcome, detail: string): UploadReport => ({
    seed,
    outcome,
    faults: faultsOf(server, plan.name, firstRecord),
    error: events.firstError,
    detail,
    elapsedMs: Date.now() - started,
    plan,
  });
  try {
    const ended = await Promise.race([events.closed.then(() => 'closed' as const), timedOut]);
    if (ended === 'timeout') {
      const state = `bytesAccepted=${stream.bytesAccepted} bytesCommitted=${stream.bytesCommitted} finish=${events.finish} error=${events.error}`;
      stream.destroy();
      return report('hung', `no close within ${timeLimitMs} ms (${state})`);
    }
    let aborted: boolean | 'timeout';
    try {
      aborted = await Promise.race([fed, timedOut]);
    } catch (error) {
      return report('wrong-error', String(error));
    }
    if (aborted === 'timeout') return report('hung', 'the stream closed but the writer never got its write callbacks or drain');
    // Give a late `finish`/`error` (after `close`: itself a bug) a chance to show up.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const faults = faultsOf(server, plan.name, firstRecord);
    const stored = server.getObject(BUCKET, plan.name);
    const silent = aborted && plan.abort?.how === 'destroy-silent';
    if (events.finish === 1 && events.error === 0) {
      if (aborted) return report('wrong-error', 'finish although the upload was aborted before its end');
      if (stored === undefined) return report('corrupt', 'finish but no object was stored');
      const expected = digest.digest('hex');
      const actual = sha256(stored.data);
      if (stored.data.length !== plan.size || actual !== expected) {
        return report('corrupt', `stored ${stored.data.length} bytes (sha256 ${actual}) instead of ${plan.size} (sha256 ${expected})`);
      }
      if (stream.object?.generation !== stored.resource.generation) {
        return report(
          'wrong-error',
          `stream.object.generation ${stream.object?.generation} is not the stored ${stored.resource.generation}`,
        );
      }
      return report('ok', faults.length > 0 ? 'recovered' : 'no faults');
    }
    if (events.finish === 0 && events.error === 0 && silent) {
      if (stored !== undefined) return report('corrupt', 'an object was stored although the stream was destroyed before its end');
      return report('failed-cleanly', 'destroyed without an error');
    }
    if (events.finish === 0 && events.error === 1) {
      if (stored !== undefined) {
        return report(
          'corrupt',
          `an object of ${stored.data.length} bytes was stored although the stream failed with ${describeError(events.firstError)}`,
        );
      }
      const problem = errorProblem(events.firstError, faults, aborted, plan);
      if (problem !== undefined) return report('wrong-error', `${problem}: ${describeError(events.firstError)}`);
      return report('failed-cleanly', describeError(events.firstError));
    }
    return report(
      'wrong-error',
      `finish emitted ${events.finish} times and error ${events.error} times (${describeError(events.firstError)})`,
    );
  } finally {
    clearTimeout(limit);
    scope?.remove();
    // Keep the server's memory flat over long runs.
    server.deleteObject(BUCKET, plan.name);
  }
}

export function describeError(error: unknown): string {
  if (error instanceof GcsUploadError) {
    const cause = error.cause instanceof GcsUploadError ? ` <- ${error.cause.name}` : '';
    return `${error.name}${cause}: ${error.message}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Faults that fired on requests of `name` (scripted and chaos), from request `from` of the log on. */
function faultsOf(server: LocalGcs, name: string, from: number): string[] {
  const records = server.requests;
  const out: string[] = [];
  for (let i = from; i < records.length; i++) {
    const record = records[i]!;
    if (record.object === name && record.fault !== undefined) out.push(record.fault);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Running many

/** Totals of a run. */
export type ChaosSummary = RunnerSummary<UploadReport>;

/** Options of {@link runChaos}. */
export interface ChaosRunOptions {
  /** Seed of the first upload; upload i has seed `seed + i`. */
  seed: number;
  uploads: number;
  /** Uploads in flight at once. */
  concurrency: number;
  /** Start a fresh server after this many uploads (bounds what a server accumulates); default: one server. */
  uploadsPerServer?: number;
  timeLimitMs?: number;
  /** One pool every upload draws from (default: the process's). */
  memory?: MemoryPool;
  /** Called after every upload. */
  onReport?: (report: UploadReport, done: number) => void;
}

/** Runs `uploads` seeded uploads, `concurrency` at a time, and totals their outcomes. */
export function runChaos(options: ChaosRunOptions): Promise<ChaosSummary> {
  return runSeeded({
    ...options,
    start: () => startLocalGcs(),
    runOne: (server, seed) => runChaosUpload(server, seed, options.timeLimitMs, options.memory),
  });
}

/** One line per bug: the seed, the outcome, what was wrong, the plan, and how to replay it. */
export function bugLines(summary: ChaosSummary): string[] {
  return seededBugLines(summary, (report) => describePlan(report.plan));
}

// ---------------------------------------------------------------------------------------------------------------
// Many uploads at once (test/concurrency.test.ts, in process and in a child process)

/** One of the simultaneous uploads of {@link runConcurrentUploads}: what it was and what it should have stored. */
export interface ConcurrentUpload {
  name: string;
  size: number;
  chunkSize: number;
  bufferChunks: number;
  /** Its memory bound, `chunkSize * bufferChunks`. */
  bound: number;
  /** Size of the scratch buffer its writer reuses (the source's own memory). */
  writeSize: number;
  faulted: boolean;
  sha256: string;
  md5: string;
  /** Base64 of the big-endian CRC32C, as in object resources. */
  crc32c: string;
  error: unknown;
}

/**
 * Starts `count` seeded uploads at once (sizes up to `maxSize`, chunk 256 or 512 KiB, 1-3 buffers, every third
 * with a recoverable fault) and waits for all of them. Each writes through one reused scratch buffer, overwritten
 * as soon as a write's callback fires: the stored bytes are right only if the stream copied them.
 */
export async function runConcurrentUploads(
  server: LocalGcs,
  options: { count: number; seed: number; maxSize: number },
): Promise<ConcurrentUpload[]> {
  const rng = createRng(options.seed);
  const uploads = Array.from({ length: options.count }, (_, index) => {
    const chunkSize = pick(rng, [ALIGNMENT, 2 * ALIGNMENT]);
    const bufferChunks = randomInt(rng, 1, 3);
    const size = randomInt(rng, 0, options.maxSize);
    const name = `concurrent/${options.seed}/${index}`;
    const faulted = index % 3 === 0;
    if (faulted) {
      const offset = randomInt(rng, 0, Math.max(0, size - 1));
      const action = pick<FaultAction>(rng, [
        { type: 'reset' },
        { type: 'status', status: 503 },
        { type: 'status', status: 500, when: 'after' },
        { type: 'partial', bytes: ALIGNMENT / 2 },
        { type: 'drop-response' },
      ]);
      server.inject({ match: { kind: 'chunk', offset, object: name }, action });
    }
    return {
      index,
      name,
      size,
      chunkSize,
      bufferChunks,
      faulted,
      origin: randomInt(rng, 0, BLOCK_LENGTH - 1),
      writeSize: randomInt(rng, 1, 256 * KiB),
    };
  });
  return Promise.all(
    uploads.map(async (spec): Promise<ConcurrentUpload> => {
      const sha = createHash('sha256');
      const md5 = createHash('md5');
      let crc = 0;
      const stream = createGcsWriteStream({
        bucket: BUCKET,
        name: spec.name,
        apiEndpoint: server.url,
        chunkSize: spec.chunkSize,
        bufferChunks: spec.bufferChunks,
        retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 8, stallTimeoutMs: 15_000 },
      });
      let error: unknown;
      stream.on('error', (e: unknown) => {
        error ??= e;
      });
      const scratch = Buffer.allocUnsafe(spec.writeSize);
      try {
        for (let pos = 0; pos < spec.size;) {
          const n = Math.min(spec.writeSize, spec.size - pos);
          fillContent(scratch, spec.origin, pos, n);
          const view = scratch.subarray(0, n);
          sha.update(view);
          md5.update(view);
          crc = crc32c(view, crc);
          pos += n;
          // The next turn overwrites `view` as soon as the callback fires: the stream must have copied it by then.
          await new Promise<void>((resolve, reject) => stream.write(view, (e) => (e ? reject(e) : resolve())));
        }
        stream.end();
        await finished(stream);
      } catch (e) {
        error ??= e;
      }
      return {
        name: spec.name,
        size: spec.size,
        chunkSize: spec.chunkSize,
        bufferChunks: spec.bufferChunks,
        bound: spec.chunkSize * spec.bufferChunks,
        writeSize: spec.writeSize,
        faulted: spec.faulted,
        sha256: sha.digest('hex'),
        md5: md5.digest('base64'),
        crc32c: crc32cToBase64(crc),
        error,
      };
    }),
  );
}
