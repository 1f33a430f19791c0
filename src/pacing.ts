/**
 * How much each request carries. A session takes one request at a time, so every request ends with a wait for the
 * answer during which nothing is sent. Two ways to use the window of `bufferChunks` chunks:
 *  - one chunk per request: the writer refills the other chunks while it is in flight (best when the writer is the
 *    slower side, or answers come quickly);
 *  - the whole window per request: a fraction of the waits for the same bytes, but the writer can only refill once
 *    the answer has freed the window (best when answers are slow: a WAN round trip, a busy server).
 * In an ideal model (writer and socket never compete) the whole window wins when the answer wait L exceeds
 * n / (n - 1) chunk fills. In Node they share one thread: while a request is being written to the socket the writer
 * gets a fraction of the event loop, so chunk fills measured during one-chunk requests overstate the writer's own
 * pace (measured on the benchmark's loopback: 8 MiB fills took 20-60 ms next to a request, 4-8 ms without). The rule
 * is therefore L > F, with F the fastest recent chunk fill: the writer could have refilled a chunk within the wait
 * alone.
 */

export class RequestPacer {
  readonly #chunks: number;
  readonly #windowBytes: number;
  readonly #stallTimeoutMs: number;
  #latencyMs: number | undefined;
  /** Request time per body byte (start to answer) of the latest request that carried data. */
  #msPerByte: number | undefined;

  constructor(bufferChunks: number, chunkSize: number, stallTimeoutMs: number) {
    this.#chunks = bufferChunks;
    this.#windowBytes = bufferChunks * chunkSize;
    this.#stallTimeoutMs = stallTimeoutMs;
  }

  /** Smoothed time from a request's body being handed to the OS to its answer, once measured. */
  get latencyMs(): number | undefined {
    return this.#latencyMs;
  }

  /**
   * A request that started at `startedAt` with `bytes` of body had it handed to the OS at `sentAt` and was answered
   * at `answeredAt` (a non-final one: the final answer includes finalizing the object).
   */
  observe(startedAt: number, sentAt: number, answeredAt: number, bytes: number): void {
    const sample = Math.max(0, answeredAt - sentAt);
    this.#latencyMs = this.#latencyMs === undefined ? sample : (this.#latencyMs + sample) / 2;
    if (bytes > 0) this.#msPerByte = Math.max(0, answeredAt - startedAt) / bytes;
  }

  /**
   * Whether the next request should wait for, and carry, the whole window; `fillMs`: the writer's chunk fill. Never
   * when a whole window would take more than half of `retry.stallTimeoutMs` at the last request's pace: that
   * deadline was sized for one chunk.
   */
  wholeWindow(fillMs: number | undefined): boolean {
    if (this.#chunks < 2 || fillMs === undefined || this.#latencyMs === undefined) return false;
    if (this.#msPerByte !== undefined && this.#msPerByte * this.#windowBytes > this.#stallTimeoutMs / 2) return false;
    return this.#latencyMs > fillMs;
  }
}
