/**
 * The retry policy, in one place: which failures are transient, how long to wait (exponential backoff with full
 * jitter, honouring Retry-After), and the attempt budget, which resets whenever the committed offset moves.
 */
import { GcsUploadError, RetryExhaustedError } from './errors.js';

/** Retry and timeout settings; every field is optional in {@link RetryOptions}. */
export interface RetrySettings {
  /** Attempts allowed without the committed offset moving forward (the first try counts). */
  maxAttempts: number;
  /** Upper bound of the first backoff, in milliseconds. */
  initialDelayMs: number;
  /** Largest backoff, in milliseconds. */
  maxDelayMs: number;
  /** Growth of the backoff bound per failed attempt. */
  multiplier: number;
  /**
   * A request that has no complete response after this long is abandoned and counts as a failed attempt. It must
   * exceed the time one chunk takes to send on the slowest link you expect (adaptive requests carry more than one
   * chunk only while that would take less than half of it).
   */
  stallTimeoutMs: number;
}

/** Retry options as users give them. */
export type RetryOptions = Partial<RetrySettings>;

/** The defaults: 1 s doubling to 32 s, 8 attempts per unit of progress, 60 s stall timeout. */
export const DEFAULT_RETRY: Readonly<RetrySettings> = Object.freeze({
  maxAttempts: 8,
  initialDelayMs: 1_000,
  maxDelayMs: 32_000,
  multiplier: 2,
  stallTimeoutMs: 60_000,
});

/**
 * Backoff before retry number `retry` (1-based): a uniformly random delay up to the exponential bound ("full
 * jitter"), never shorter than what the server asked for with Retry-After, never above `maxDelayMs`.
 */
export function computeDelayMs(
  retry: number,
  settings: Pick<RetrySettings, 'initialDelayMs' | 'maxDelayMs' | 'multiplier'>,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const bound = Math.min(settings.maxDelayMs, settings.initialDelayMs * settings.multiplier ** (retry - 1));
  const jittered = Math.floor(random() * bound);
  return Math.min(settings.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts; leaves no timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Details of a retry about to happen, as reported to `onRetry`. */
export interface RetryEvent {
  /** Consecutive failed attempts so far without progress. */
  attempt: number;
  delayMs: number;
  error: GcsUploadError;
}

/** Counts failed attempts since the last progress and decides whether, and after how long, to try again. */
export class RetryBudget {
  readonly #settings: Readonly<RetrySettings>;
  readonly #random: () => number;
  #failures = 0;

  constructor(settings: Readonly<RetrySettings>, random: () => number = Math.random) {
    this.#settings = settings;
    this.#random = random;
  }

  /** The committed offset moved forward: the next failure starts a fresh budget. */
  progressed(): void {
    this.#failures = 0;
  }

  /**
   * Records a failed attempt. Throws `error` itself when it is not transient, `RetryExhaustedError` when the budget
   * is spent; otherwise waits the backoff (abortable) and returns.
   */
  async failed(error: GcsUploadError, signal: AbortSignal, onRetry?: (event: RetryEvent) => void): Promise<void> {
    if (!error.retryable) throw error;
    this.#failures += 1;
    if (this.#failures >= this.#settings.maxAttempts) {
      throw new RetryExhaustedError(this.#failures, error);
    }
    const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
    const delayMs = computeDelayMs(this.#failures, this.#settings, this.#random, retryAfterMs);
    onRetry?.({ attempt: this.#failures, delayMs, error });
    await sleep(delayMs, signal);
  }
}
