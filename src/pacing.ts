/**
 * How much each request carries. A session takes one request at a time, so every request ends with a wait for the
 * answer during which nothing is sent. Two ways to use the window of `bufferChunks` chunks:
 *  - one chunk per request: the writer refills the other chunks while it is in flight (best when the writer is the
 *    slower side, or the answer comes quickly);
 *  - the whole window per request: half the waits (or fewer) for the same bytes, but the writer can only refill
 *    once the answer has freed the window (best when answers are slow: a WAN round trip, a busy server).
 * With window W = n chunks, a writer that fills a chunk in F ms and an answer that takes L ms after the body was
 * sent, the whole window wins when L > F * n / (n - 1). Both are measured as the upload goes, so the choice
 * follows the link and the source.
 */

export class RequestPacer {
  readonly #chunks: number;
  #latencyMs: number | undefined;

  constructor(bufferChunks: number) {
    this.#chunks = bufferChunks;
  }

  /** Smoothed time from a request's body being handed to the OS to its answer, once measured. */
  get latencyMs(): number | undefined {
    return this.#latencyMs;
  }

  /** A non-final request's body was handed to the OS at `sentAt`; its answer arrived at `answeredAt`. */
  observe(sentAt: number, answeredAt: number): void {
    const sample = Math.max(0, answeredAt - sentAt);
    this.#latencyMs = this.#latencyMs === undefined ? sample : (this.#latencyMs + sample) / 2;
  }

  /** Whether the next request should wait for, and carry, the whole window; `fillMs`: the writer's last chunk. */
  wholeWindow(fillMs: number | undefined): boolean {
    const n = this.#chunks;
    if (n < 2 || fillMs === undefined || this.#latencyMs === undefined) return false;
    return this.#latencyMs * (n - 1) > fillMs * n;
  }
}
