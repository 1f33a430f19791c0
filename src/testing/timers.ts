/**
 * The timers of one local GCS server, in one place so that closing the server cancels every pending one: a server
 * that stalls or trickles on purpose must still close without hanging.
 */

/** Tracks a server's timers; {@link Timers.close} cancels them all. */
export class Timers {
  readonly #pending = new Set<NodeJS.Timeout>();
  #closed = false;

  /**
   * Resolves after `ms` milliseconds; at once when `ms <= 0` or the server is closing, so that nothing waits on a
   * server that is going away. A sleep cancelled by {@link Timers.close} never resolves: its exchange is over.
   */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Runs `callback` after `ms` milliseconds, unless {@link Timers.close} cancels it first. */
  after(ms: number, callback: () => void): void {
    const timer = setTimeout(() => {
      this.#pending.delete(timer);
      callback();
    }, ms);
    this.#pending.add(timer);
  }

  /** Cancels every pending timer; later sleeps resolve at once. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
  }
}
