/**
 * What the memory was made of when the RSS peaked: `process.memoryUsage()` sampled on a timer, the sample with the
 * highest RSS kept. The kernel's high-water mark (`peak-rss.ts`) says how high the RSS went; this says what was in
 * it then: V8's heap (live objects and the room V8 keeps for new ones), and the memory of Buffers (a contender's
 * pooled blocks, and the sources' written buffers that no one holds any more but the garbage collector has not
 * freed yet). Sampled, so it may miss the exact peak by one interval.
 */

/** One sample, in bytes; `seconds` from the sampler's start. */
export interface MemorySample {
  seconds: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  arrayBuffers: number;
}

/** Samples `process.memoryUsage()` every `intervalMs` until stopped, keeping the sample of the highest RSS. */
export class PeakMemorySampler {
  readonly #startedAt = performance.now();
  readonly #timer: NodeJS.Timeout;
  #peak: MemorySample;

  constructor(intervalMs = 25) {
    this.#peak = this.#sample();
    this.#timer = setInterval(() => {
      const sample = this.#sample();
      if (sample.rss > this.#peak.rss) this.#peak = sample;
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops sampling; returns the sample of the highest RSS. */
  stop(): MemorySample {
    clearInterval(this.#timer);
    return this.#peak;
  }

  #sample(): MemorySample {
    return { ...memoryNow(), seconds: (performance.now() - this.#startedAt) / 1000 };
  }
}

/** The same fields of `process.memoryUsage()` now, for a baseline. */
export function memoryNow(): MemorySample {
  const { rss, heapTotal, heapUsed, arrayBuffers } = process.memoryUsage();
  return { seconds: 0, rss, heapTotal, heapUsed, arrayBuffers };
}
