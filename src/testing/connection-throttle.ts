/**
 * The local server's per-connection bandwidth limit (`connectionBytesPerSecond`): GCS caps the throughput of each
 * stream, and a benchmark on loopback needs that cap to show what parallel connections gain. Each connection has a
 * token bucket; the bytes of request bodies read from it take tokens, and once the bucket is empty the request is
 * paused (which stops reading the socket, so TCP flow control holds the client back: nothing is buffered beyond
 * the stream's own small buffer) until the bucket has refilled what was taken.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Timers } from './timers.js';

/** What the limit did so far (see `LocalGcs.throttleStats`). */
export interface ThrottleStats {
  /** The limit, in bytes per second per connection. */
  readonly bytesPerSecond: number;
  /** Request body bytes that went through the limit. */
  readonly bytesMetered: number;
  /** How many times a request was paused to keep its connection within the limit. */
  readonly pauses: number;
}

interface Bucket {
  tokens: number;
  /** `performance.now()` of the last refill. */
  at: number;
}

/** Token buckets of a server's connections. */
export class ConnectionThrottle {
  readonly #bytesPerSecond: number;
  /** What a bucket holds when full: 50 ms of the rate, at least 64 KiB (one socket read) so that pieces fit. */
  readonly #capacity: number;
  readonly #timers: Timers;
  readonly #buckets = new WeakMap<Socket, Bucket>();
  #bytesMetered = 0;
  #pauses = 0;

  constructor(bytesPerSecond: number, timers: Timers) {
    this.#bytesPerSecond = bytesPerSecond;
    this.#capacity = Math.max(64 * 1024, bytesPerSecond / 20);
    this.#timers = timers;
  }

  /** What the limit did so far. */
  get stats(): ThrottleStats {
    return { bytesPerSecond: this.#bytesPerSecond, bytesMetered: this.#bytesMetered, pauses: this.#pauses };
  }

  /** Takes `bytes` (just read from `req`'s body) from its connection's bucket; pauses `req` while it is in debt. */
  meter(req: IncomingMessage, bytes: number): void {
    const now = performance.now();
    let bucket = this.#buckets.get(req.socket);
    if (bucket === undefined) {
      bucket = { tokens: this.#capacity, at: now };
      this.#buckets.set(req.socket, bucket);
    }
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + ((now - bucket.at) * this.#bytesPerSecond) / 1000) - bytes;
    bucket.at = now;
    this.#bytesMetered += bytes;
    if (bucket.tokens >= 0) return;
    this.#pauses += 1;
    req.pause();
    const waitMs = Math.ceil((-bucket.tokens * 1000) / this.#bytesPerSecond);
    this.#timers.after(waitMs, () => {
      if (!req.destroyed) req.resume();
    });
  }
}
