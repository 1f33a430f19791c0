/**
 * Seeded random faults ("chaos") for the local GCS server. Given the same seed and the same sequence of requests,
 * the same faults fire with the same parameters: a failing chaos run can be replayed from its seed.
 */
import type { FaultAction, ObjectApiFaultKind, UploadFaultKind } from './faults.js';

/** A source of uniformly distributed numbers in `[0, 1)`. */
export type Rng = () => number;

/**
 * A small, fast, seeded PRNG (a Weyl sequence passed through a 32-bit avalanche mix). Deterministic for a given
 * seed; good enough for fault schedules and test data, not for anything secret.
 */
export function createRng(seed: number): Rng {
  let state = Math.trunc(seed) >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x1_0000_0000;
  };
}

/** A random integer in `[min, max]` (both inclusive). */
export function randomInt(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

/** The faults chaos can pick from. */
export type ChaosKind = 'reset' | 'status-before' | 'status-after' | 'partial' | 'drop-response' | 'stall' | 'expire';

/**
 * The kinds chaos uses when none are given: every recoverable fault. `expire` is left out because an expired
 * session cannot be recovered (the upload has to fail); ask for it explicitly.
 */
export const DEFAULT_CHAOS_KINDS: readonly ChaosKind[] = Object.freeze([
  'reset',
  'status-before',
  'status-after',
  'partial',
  'drop-response',
  'stall',
]);

/** Statuses chaos answers with for `status-*` faults when none are given: the retryable ones. */
export const DEFAULT_CHAOS_STATUSES: readonly number[] = Object.freeze([408, 429, 500, 502, 503, 504]);

/** The kinds of request chaos can fault: upload requests (`cancel` never) and the object API calls. */
export type ChaosRequestKind = Exclude<UploadFaultKind, 'cancel'> | ObjectApiFaultKind;

/**
 * The requests chaos faults when `requests` is not given: the upload requests. Compose, delete and listing are
 * opt-in, so that chaos set up for uploads keeps the same schedule when other code deletes or lists.
 */
export const DEFAULT_CHAOS_REQUESTS: readonly ChaosRequestKind[] = Object.freeze(['open', 'chunk', 'final', 'query']);

const CHAOS_REQUEST_KINDS: ReadonlySet<string> = new Set<ChaosRequestKind>([
  'open',
  'chunk',
  'final',
  'query',
  'compose',
  'delete',
  'list',
]);

/** Options of seeded random fault injection. */
export interface ChaosOptions {
  /** The PRNG seed; defaults to the server's `seed` option, else 1. */
  seed?: number;
  /** Probability, per request of a kind in `requests`, that a fault fires. In `[0, 1]`. */
  probability: number;
  /**
   * Which requests chaos may fault; default {@link DEFAULT_CHAOS_REQUESTS} (`open`, chunk, final, `query`). Add
   * `compose`, `delete` and `list` to fault the calls of composite uploads too: they get `reset`, `status-before`,
   * `status-after` (applied, then the status; not on `list`), `drop-response` and `stall`.
   */
  requests?: readonly ChaosRequestKind[];
  /** Which faults to pick from; default {@link DEFAULT_CHAOS_KINDS}. */
  kinds?: readonly ChaosKind[];
  /** Let `partial` sometimes persist an amount that is not a multiple of 256 KiB (GCS itself does not). */
  unaligned?: boolean;
  /** Statuses for `status-before`/`status-after`; default {@link DEFAULT_CHAOS_STATUSES}. */
  statuses?: readonly number[];
  /** Shortest stall, in milliseconds; default 50. */
  stallMinMs?: number;
  /** Longest stall, in milliseconds; default 500. */
  stallMaxMs?: number;
  /** Stop injecting after this many faults; default unlimited. */
  maxFaults?: number;
}

/** Options of chaos confined to some uploads (see `LocalGcs.addChaos`). */
export interface ScopedChaosOptions extends ChaosOptions {
  /** Only requests of uploads to this bucket are faulted; any bucket when omitted. */
  bucket?: string;
  /** Only requests of uploads of this object are faulted; any object when omitted. */
  object?: string;
}

/** Chaos added with `LocalGcs.addChaos`. */
export interface ChaosScope {
  /** How many faults it has injected so far. */
  readonly fired: number;
  /** Stops it; later requests of its uploads fall back to the server-wide chaos, if any. Idempotent. */
  remove(): void;
}

/** What chaos is told about a request before it decides. */
export interface ChaosRequest {
  /** The request's main kind. `cancel` requests are never faulted by chaos. */
  kind: UploadFaultKind | ObjectApiFaultKind;
  /** Length of the request body as announced by its headers, if known. */
  bodyLength?: number;
}

const ALIGNMENT = 256 * 1024;

/**
 * Decides, request by request, whether a random fault fires and which. One draw decides whether to fault; a fault
 * then draws its kind and parameters. The sequence of decisions depends only on the seed and the requests seen.
 */
export class Chaos {
  #rng: Rng;
  #probability: number;
  #kinds: readonly ChaosKind[];
  #unaligned: boolean;
  #statuses: readonly number[];
  #stallMinMs: number;
  #stallMaxMs: number;
  #maxFaults: number;
  #requests: ReadonlySet<string>;
  #fired = 0;

  /** Validates `options` and seeds the PRNG (`options.seed`, else `fallbackSeed`). */
  constructor(options: ChaosOptions, fallbackSeed = 1) {
    const { probability } = options;
    if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) {
      throw new RangeError(`chaos.probability must be a number in [0, 1], got ${String(probability)}`);
    }
    const kinds = options.kinds ?? DEFAULT_CHAOS_KINDS;
    if (kinds.length === 0) throw new RangeError('chaos.kinds must not be empty');
    const statuses = options.statuses ?? DEFAULT_CHAOS_STATUSES;
    if (statuses.length === 0) throw new RangeError('chaos.statuses must not be empty');
    const stallMinMs = options.stallMinMs ?? 50;
    const stallMaxMs = options.stallMaxMs ?? Math.max(500, stallMinMs);
    if (!(stallMinMs >= 0 && stallMaxMs >= stallMinMs)) {
      throw new RangeError(`chaos stall range must satisfy 0 <= stallMinMs <= stallMaxMs, got ${stallMinMs}..${stallMaxMs}`);
    }
    this.#rng = createRng(options.seed ?? fallbackSeed);
    this.#probability = probability;
    this.#kinds = [...kinds];
    this.#unaligned = options.unaligned ?? false;
    this.#statuses = [...statuses];
    this.#stallMinMs = Math.trunc(stallMinMs);
    this.#stallMaxMs = Math.trunc(stallMaxMs);
    this.#maxFaults = options.maxFaults ?? Infinity;
    const requests = options.requests ?? DEFAULT_CHAOS_REQUESTS;
    for (const kind of requests) {
      if (!CHAOS_REQUEST_KINDS.has(kind)) throw new RangeError(`chaos.requests: unknown request kind ${String(kind)}`);
    }
    this.#requests = new Set(requests);
  }

  /** How many faults chaos has injected so far. */
  get fired(): number {
    return this.#fired;
  }

  /** The fault to inject into this request, or `undefined` for none. */
  pick(request: ChaosRequest): FaultAction | undefined {
    // Checked before the draw: a request chaos does not cover leaves the schedule of the others as it was.
    if (!this.#requests.has(request.kind) || this.#fired >= this.#maxFaults) return undefined;
    if (this.#rng() >= this.#probability) return undefined;
    const applicable = this.#kinds.filter((kind) => applies(kind, request));
    if (applicable.length === 0) return undefined;
    const kind = applicable[randomInt(this.#rng, 0, applicable.length - 1)];
    if (kind === undefined) return undefined;
    this.#fired += 1;
    return this.#build(kind, request.bodyLength);
  }

  #build(kind: ChaosKind, bodyLength: number | undefined): FaultAction {
    const rng = this.#rng;
    switch (kind) {
      case 'reset':
        return { type: 'reset', afterBytes: bodyLength ? randomInt(rng, 0, bodyLength - 1) : 0 };
      case 'status-before':
      case 'status-after': {
        const status = this.#statuses[randomInt(rng, 0, this.#statuses.length - 1)] ?? 503;
        return { type: 'status', status, when: kind === 'status-before' ? 'before' : 'after' };
      }
      case 'partial': {
        const length = bodyLength ?? 0;
        if (this.#unaligned && rng() < 0.5) return { type: 'partial', bytes: randomInt(rng, 0, length - 1) };
        const units = Math.floor((length - 1) / ALIGNMENT);
        return { type: 'partial', bytes: randomInt(rng, 0, units) * ALIGNMENT };
      }
      case 'drop-response':
        return { type: 'drop-response' };
      case 'stall':
        return { type: 'stall', ms: randomInt(rng, this.#stallMinMs, this.#stallMaxMs) };
      case 'expire':
        return { type: 'expire', status: rng() < 0.5 ? 404 : 410 };
    }
  }
}

function applies(kind: ChaosKind, request: ChaosRequest): boolean {
  if (request.kind === 'compose' || request.kind === 'delete' || request.kind === 'list') {
    return kind !== 'partial' && kind !== 'expire' && !(kind === 'status-after' && request.kind === 'list');
  }
  switch (kind) {
    case 'partial':
      return (request.kind === 'chunk' || request.kind === 'final') && (request.bodyLength ?? 0) > 0;
    case 'expire':
      return request.kind !== 'open';
    default:
      return true;
  }
}
