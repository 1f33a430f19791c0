/**
 * How much each request carries. A session takes one request at a time, so every request ends with a wait for the
 * answer. Two ways to use the window of `bufferChunks` (n) chunks:
 *  - one chunk per request: the writer refills the other chunks while it is in flight (best when the writer is the
 *    slower side, or answers come quickly);
 *  - the whole window per request: a fraction of the waits for the same bytes, but the writer can only refill once
 *    the answer has freed the window, so filling and sending no longer overlap.
 * The whole window wins when the part of the wait that moves no bytes, the fixed latency L0 (a WAN round trip, a
 * server's think time), exceeds n / (n - 1) chunk fills F: it saves (n - 1) waits per window and costs the n fills
 * it no longer overlaps.
 *
 * L0 is not the answer time of a data request: that also holds the server reading the tail of the body out of the
 * socket buffers (measured on the benchmark's loopback: 4-14 ms per 16 MiB answer at zero added latency, against
 * 2 ms for the session request), time in which the link is busy and filling does overlap. So L0 is the answer time
 * of a request without a body (the session request), lowered by any faster data answer later (the network got
 * quicker); it is never raised by data answers.
 */

/** See RequestPacer.growToBytes. */
const WINDOW_LATENCY_FACTOR = 12;
/** See RequestPacer.shortHoldMs. */
const SHORT_HOLD_WAITS = 4;
/** See RequestPacer.growToBytes. */
const MAX_BUSY_SHARE_TO_GROW = 0.75;

/**
 * The share of the time since its previous call that this thread's event loop spent working rather than waiting
 * for I/O (`performance.eventLoopUtilization()`), as a function the pacer calls once per answer.
 */
export function eventLoopBusyMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}

/**
 * How requests are sized (see {@link RequestPacer.requestMode}): `chunks`, up to `chunkSize` each; `whole`, the
 * whole window once it is at its target; `pipelined`, half the window's target once that much is full.
 */
export type RequestMode = 'chunks' | 'whole' | 'pipelined';

export class RequestPacer {
  readonly #chunks: number;
  readonly #windowBytes: number;
  readonly #stallTimeoutMs: number;
  /** Smoothed answer time of all requests (what a held chunk may wait). */
  #latencyMs: number | undefined;
  /** Smoothed answer time of requests without a body. */
  #bodilessMs: number | undefined;
  /** Request time per body byte (start to answer) of the latest request that carried data. */
  #msPerByte: number | undefined;
  /** Bytes per ms the link moved in the latest request that carried data (its time less the fixed latency). */
  #bytesPerMs: number | undefined;
  readonly #busyMeter: () => number;
  /** Smoothed share of the time the event loop was busy between answers to data requests. */
  #busyShare: number | undefined;

  /** `busyMeter`: see eventLoopBusyMeter (tests pass their own). */
  constructor(bufferChunks: number, chunkSize: number, stallTimeoutMs: number, busyMeter = eventLoopBusyMeter()) {
    this.#chunks = bufferChunks;
    this.#windowBytes = bufferChunks * chunkSize;
    this.#stallTimeoutMs = stallTimeoutMs;
    this.#busyMeter = busyMeter;
  }

  /** Smoothed share of the time this thread's event loop was busy between answers to data requests, once measured. */
  get busyShare(): number | undefined {
    return this.#busyShare;
  }

  /** Smoothed time from a request's body being handed to the OS to its answer, once measured. */
  get latencyMs(): number | undefined {
    return this.#latencyMs;
  }

  /** The estimate of L0 (see the module comment), once measured. */
  get fixedLatencyMs(): number | undefined {
    if (this.#bodilessMs === undefined) return this.#latencyMs;
    return this.#latencyMs === undefined ? this.#bodilessMs : Math.min(this.#bodilessMs, this.#latencyMs);
  }

  /**
   * A request that started at `startedAt` with `bytes` of body had it handed to the OS at `sentAt` and was answered
   * at `answeredAt` (a non-final one: the final answer includes finalizing the object).
   */
  observe(startedAt: number, sentAt: number, answeredAt: number, bytes: number): void {
    const sample = Math.max(0, answeredAt - sentAt);
    this.#latencyMs = this.#latencyMs === undefined ? sample : (this.#latencyMs + sample) / 2;
    const busy = this.#busyMeter();
    if (bytes === 0) {
      this.#bodilessMs = this.#bodilessMs === undefined ? sample : (this.#bodilessMs + sample) / 2;
      return;
    }
    this.#busyShare = this.#busyShare === undefined ? busy : (this.#busyShare + busy) / 2;
    const total = Math.max(0, answeredAt - startedAt);
    this.#msPerByte = total / bytes;
    this.#bytesPerMs = bytes / Math.max(1, total - (this.fixedLatencyMs ?? 0));
  }

  /**
   * How long full blocks short of a chunk may wait for the chunk to fill before they go on their own: one chunk
   * fill at the source's recent pace (`fillMs`), so that a fast source's requests carry whole chunks (each request
   * has a fixed cost, an answer wait and the server's work, that small requests would pay over and over), but at
   * most SHORT_HOLD_WAITS answer waits, so that a slow source's blocks are committed almost as they fill.
   */
  shortHoldMs(fillMs: number | undefined): number {
    const wait = this.fixedLatencyMs;
    if (fillMs === undefined || wait === undefined) return 0;
    return Math.min(fillMs, SHORT_HOLD_WAITS * Math.max(wait, 1));
  }

  /**
   * How many bytes the window should be allowed to grow to: two requests' worth (`requestBytes`) while requests are
   * chunks (the link is the limit), and towards WINDOW_LATENCY_FACTOR × bandwidth × fixed latency while the latency
   * is what costs. A session takes one request at a time, so a request of W bytes moves W / (W / bandwidth +
   * latency); pipelined requests carry half the window (the writer refills the other half meanwhile), so at
   * 12 × bandwidth × latency each carries 6 × and moves 86 % of the bandwidth. Never above `capBytes`.
   *
   * Only while the thread waits for answers, though: a window beyond two requests saves answer waits, and that
   * pays only if the thread has nothing else to do during them. Where the event loop is busy for more than
   * MAX_BUSY_SHARE_TO_GROW of the time between answers (copying, hashing and writing to the socket on a link that
   * one connection fills, or a process with other work), CPU, not latency, holds the writer back: a larger window
   * would hold memory for the same throughput (measured on loopback: +96 to +133 MiB of RSS at the throughput of
   * two chunks). The latency estimate alone cannot tell: a session open answered slowly by a cold or busy server
   * reads as a long fixed latency.
   */
  growToBytes(requestBytes: number, capBytes: number, mode: RequestMode): number {
    const base = Math.min(capBytes, 2 * requestBytes);
    const fixed = this.fixedLatencyMs;
    // Requests of one chunk each gain nothing from a writer further ahead than the next chunk.
    if (mode === 'chunks' || fixed === undefined || this.#bytesPerMs === undefined) return base;
    if (this.#busyShare !== undefined && this.#busyShare > MAX_BUSY_SHARE_TO_GROW) return base;
    return Math.min(capBytes, Math.max(base, WINDOW_LATENCY_FACTOR * this.#bytesPerMs * fixed));
  }

  /**
   * How the next request is sized; `fillMs`: the writer's chunk fill, `targetBytes`: the window's target. Chunks
   * unless the latency dominates (see wholeWindow). Then a request either waits for the whole window, when the
   * writer fills it within the fixed latency (the fill costs less than the answer wait another request would add),
   * or carries half of it and lets the writer refill the other half while the request is in flight (pipelined): a
   * request of W of a window of 2W moves W / (W / bandwidth + latency), the whole window of 2W moves
   * 2W / (2W / fill rate + 2W / bandwidth + latency), and the second is larger exactly when 2W / fill rate is less
   * than the latency.
   */
  requestMode(fillMs: number | undefined, targetBytes: number, requestBytes: number): RequestMode {
    if (!this.wholeWindow(fillMs)) return 'chunks';
    return fillMs! * (targetBytes / requestBytes) < this.fixedLatencyMs! ? 'whole' : 'pipelined';
  }

  /**
   * Whether the next request should wait for, and carry, the whole window; `fillMs`: the writer's chunk fill. Never
   * when a whole window would take more than half of `retry.stallTimeoutMs` at the last request's pace: that
   * deadline was sized for one chunk.
   */
  wholeWindow(fillMs: number | undefined): boolean {
    const fixed = this.fixedLatencyMs;
    if (this.#chunks < 2 || fillMs === undefined || fixed === undefined) return false;
    if (this.#msPerByte !== undefined && this.#msPerByte * this.#windowBytes > this.#stallTimeoutMs / 2) return false;
    return fixed * (this.#chunks - 1) > fillMs * this.#chunks;
  }
}

/** What sizes a window's target at a commit (see {@link nextWindowTarget}). */
export interface WindowTargetInput {
  /** The target so far, in blocks. */
  targetBlocks: number;
  /** The writer waited on a full window through the request that just ended: memory held it back. */
  blockedAtTarget: boolean;
  /** Blocks the source would have filled, at its own pace, while it waited for room through that request. */
  starvedBlocks: number;
  /** The most blocks the window held since the previous commit. */
  peakBlocks: number;
  /** How far the target may grow now (see RequestPacer.growToBytes). */
  growToBlocks: number;
}

/**
 * The window's next target, in blocks. While memory holds the writer back it grows by what the writer fell short
 * (the blocks it would have filled while it waited), at least doubling, up to `growToBlocks`: a fast source over a
 * long round trip reaches its bandwidth × latency in a few requests instead of one doubling per round trip. Else it
 * follows what the writer actually used, with room to double, so that a stream whose rate falls gives memory back
 * and one whose rate holds keeps what it needs. Never below one block, never above `growToBlocks`.
 */
export function nextWindowTarget(input: WindowTargetInput): number {
  const ceiling = Math.max(1, input.growToBlocks);
  const next = input.blockedAtTarget
    ? Math.max(input.targetBlocks * 2, input.targetBlocks + input.starvedBlocks)
    : Math.min(input.targetBlocks, 2 * input.peakBlocks);
  return Math.max(1, Math.min(ceiling, next));
}
