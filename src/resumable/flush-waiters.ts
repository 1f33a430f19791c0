/** The `flush()` calls of an upload waiting for the committed offset to reach their targets. */

interface Waiter {
  target: number;
  resolve: (committed: number) => void;
  reject: (error: unknown) => void;
}

/** Pending flushes, resolved as commits reach them, all at the end, or rejected together after a failure. */
export class FlushWaiters {
  #waiters: Waiter[] = [];

  /** The highest target asked for (0 when none waits): everything below it is to be committed now. */
  get highestTarget(): number {
    let highest = 0;
    for (const waiter of this.#waiters) highest = Math.max(highest, waiter.target);
    return highest;
  }

  /** Waits for the committed offset to reach `target`; resolves with the committed offset then. */
  add(target: number): Promise<number> {
    return new Promise((resolve, reject) => this.#waiters.push({ target, resolve, reject }));
  }

  /** The committed offset is `committed`; with `done` the upload has ended and every flush resolves. */
  reached(committed: number, done: boolean): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!done && waiter.target > committed) return true;
      waiter.resolve(committed);
      return false;
    });
  }

  /** The upload failed: every flush rejects with `error`. */
  fail(error: unknown): void {
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters = [];
  }
}
