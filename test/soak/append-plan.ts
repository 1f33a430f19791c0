/**
 * The plan of one seeded chaos upload into an appendable object (`createGcsAppendStream` over gRPC): everything it
 * does (size, write sizes, flushes, finalize or not, retry settings, the gRPC faults and an abort) derives from its
 * seed, so that a failing upload replays from its seed alone. Faults match the upload's own object, so concurrency
 * does not change what fires; what a replay cannot repeat exactly is timing (backoff jitter, the time bound).
 */
import type { GrpcFaultAction, GrpcFaultMatch, GrpcFaultStatus } from '../../src/testing/index.js';
import { createRng, randomInt, type Rng } from '../../src/testing/index.js';
import { BLOCK_LENGTH, KiB, logUniform, meanWrite, MiB, pick } from './chaos-upload.js';

/** Largest object the append chaos generates (plus one byte, for the sizes around a message boundary). */
export const MAX_APPEND_SIZE = 4 * MiB;
/** The content of one `BidiWriteObject` data message, at most (a boundary worth aiming sizes and faults at). */
const MESSAGE = 2 * MiB;

/** Statuses the stream must retry, and statuses it must fail on at once. */
export const TRANSIENT_STATUSES: readonly GrpcFaultStatus[] = ['UNAVAILABLE', 'INTERNAL', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED'];
export const FATAL_STATUSES: readonly GrpcFaultStatus[] = ['PERMISSION_DENIED', 'INVALID_ARGUMENT', 'UNAUTHENTICATED'];

/** A scripted gRPC fault; the upload's bucket and object are added to `match` when it is injected. */
export interface AppendFault {
  match: Pick<GrpcFaultMatch, 'offset'>;
  action: GrpcFaultAction;
  times: number;
}

/** How an upload is stopped before its end, once `at` bytes were written. */
export interface AppendAbort {
  at: number;
  /** `signal`: the `signal` option aborts; `destroy`: `destroy(err)`; `destroy-silent`: `destroy()`. */
  how: 'signal' | 'destroy' | 'destroy-silent';
  /** Whether a `flush()` is started (not awaited) just before the abort. */
  duringFlush: boolean;
}

/** One seeded append upload, fully decided before it starts. */
export interface AppendPlan {
  seed: number;
  name: string;
  size: number;
  /** Offset of the upload's content in the random block (see `contentAt` of chaos-upload.ts). */
  origin: number;
  finalize: boolean;
  /** Whether the create carries `ifGenerationMatch: 0` (a lost create then ends in CreateUnconfirmedError). */
  createOnly: boolean;
  retry: { initialDelayMs: number; maxDelayMs: number; stallTimeoutMs: number; maxAttempts: number };
  /** The time bound on unpersisted bytes, when the plan sets one (else the default, which a run never reaches). */
  maxUncommittedMs: number | undefined;
  /** Writes are 1 B .. `maxWrite` bytes, log-uniformly distributed. */
  maxWrite: number;
  /** Chance, after each write, of a `flush()`; and that the writer awaits it before writing on. */
  flushChance: number;
  awaitFlushChance: number;
  /** Chance, after each write, of an async pause (`setImmediate`). */
  pauseChance: number;
  faults: AppendFault[];
  abort: AppendAbort | undefined;
}

function planSize(rng: Rng): number {
  const roll = rng();
  if (roll < 0.1) return 0;
  // Around a message boundary: the last message is full, empty or a single byte.
  if (roll < 0.25) return Math.max(0, randomInt(rng, 1, 2) * MESSAGE + pick(rng, [-1, 0, 1]));
  if (roll < 0.5) return randomInt(rng, 1, 64 * KiB);
  if (roll < 0.75) return logUniform(rng, MAX_APPEND_SIZE);
  return randomInt(rng, 0, MAX_APPEND_SIZE);
}

/** An offset at which a fault fires: a message boundary or one byte off one, or anywhere in the object. */
function faultOffset(rng: Rng, size: number): number {
  const boundaries = Math.floor((size - 1) / MESSAGE);
  if (boundaries > 0 && rng() < 0.25) return Math.min(size - 1, randomInt(rng, 1, boundaries) * MESSAGE + pick(rng, [-1, 0]));
  return randomInt(rng, 0, size - 1);
}

function planFault(rng: Rng, size: number): AppendFault {
  const times = rng() < 0.75 ? 1 : randomInt(rng, 2, 3);
  // Without an offset a rule fires on the first message of the object's streams (the create, then reopens); an
  // offset beyond the object never fires, so an empty object gets first-message faults only.
  const match = size > 0 && rng() < 0.75 ? { offset: faultOffset(rng, size) } : {};
  const roll = rng();
  let action: GrpcFaultAction;
  if (roll < 0.25) action = { type: 'break' };
  else if (roll < 0.4) action = { type: 'stall' };
  else if (roll < 0.65) action = { type: 'status', status: pick(rng, TRANSIENT_STATUSES) };
  else if (roll < 0.77) action = { type: 'status', status: pick(rng, FATAL_STATUSES) };
  else action = rng() < 0.5 ? { type: 'redirect' } : { type: 'redirect', routingToken: `zone-${randomInt(rng, 1, 9)}` };
  return { match, action, times };
}

/** Derives the whole append upload from its seed. */
export function planAppend(seed: number): AppendPlan {
  const rng = createRng(seed);
  const size = planSize(rng);
  const origin = randomInt(rng, 0, BLOCK_LENGTH - 1);
  const retry = {
    initialDelayMs: randomInt(rng, 0, 2),
    maxDelayMs: 5,
    // Short: every stall fault costs one stall timeout, and the run tests the stream, not the clock.
    stallTimeoutMs: randomInt(rng, 300, 500),
    maxAttempts: randomInt(rng, 4, 8),
  };
  // At most ~2,000 writes per upload, and at most ~30 flushes.
  let maxWrite = logUniform(rng, MiB);
  while (maxWrite < MiB && size / meanWrite(maxWrite) > 2_000) maxWrite *= 2;
  maxWrite = Math.min(maxWrite, MiB);
  const writes = Math.max(1, size / meanWrite(maxWrite));
  const flushChance = pick(rng, [0, 0.02, 0.1, 0.3, 1]) * Math.min(1, 30 / writes);
  const awaitFlushChance = pick(rng, [0, 0.5, 1]);
  const pauseChance = pick(rng, [0, 0, 0.05, 0.3]) * Math.min(1, 300 / writes);
  const finalize = rng() < 0.7;
  const createOnly = rng() < 0.3;
  const maxUncommittedMs = rng() < 0.25 ? randomInt(rng, 2, 20) : undefined;
  const faults = Array.from({ length: randomInt(rng, 1, 3) }, () => planFault(rng, size));
  let abort: AppendAbort | undefined;
  if (size > 0 && rng() < 0.12) {
    abort = {
      at: randomInt(rng, 0, size - 1),
      how: pick(rng, ['signal', 'signal', 'destroy', 'destroy-silent'] as const),
      duringFlush: rng() < 0.5,
    };
  }
  return {
    seed,
    name: `append-chaos/${seed}`,
    size,
    origin,
    finalize,
    createOnly,
    retry,
    maxUncommittedMs,
    maxWrite,
    flushChance,
    awaitFlushChance,
    pauseChance,
    faults,
    abort,
  };
}

/** A one-line description of a plan, for failure reports. */
export function describeAppendPlan(plan: AppendPlan): string {
  const faults = plan.faults.map((f) => `${JSON.stringify(f.match)}->${JSON.stringify(f.action)}x${f.times}`).join(' ');
  const abort = plan.abort === undefined ? 'none' : `${plan.abort.how}@${plan.abort.at}${plan.abort.duringFlush ? '+flush' : ''}`;
  return (
    `size=${plan.size} finalize=${plan.finalize} createOnly=${plan.createOnly} maxWrite=${plan.maxWrite} ` +
    `flush=${plan.flushChance.toFixed(3)}/await=${plan.awaitFlushChance} maxUncommittedMs=${plan.maxUncommittedMs ?? 'default'} ` +
    `retry=${JSON.stringify(plan.retry)} faults=[${faults}] abort=${abort}`
  );
}
