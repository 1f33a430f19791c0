/**
 * The retry policy, in one place: which failures are transient, how long to wait (exponential backoff with full
 * jitter, honouring Retry-After), the user's veto or extension (`shouldRetry`), and the attempt budget, which
 * resets whenever the committed offset moves.
 */
import { ListenerError, RetryExhaustedError, type GcsUploadError } from './errors.js';

/** HTTP statuses GCS documents as transient. */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Whether an answer with `status` is worth retrying. */
export function isTransientStatus(status: number): boolean {
  return TRANSIENT_STATUSES.has(status);
}

/** A `Retry-After` header (seconds, or an HTTP date) in milliseconds from `now`, or undefined. */
export function parseRetryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What `shouldRetry` is asked about. */
export interface RetryQuestion {
  /** The failure. */
  error: GcsUploadError;
  /** Consecutive failed attempts without progress, this one included. */
  attempt: number;
  /** What the library would do by itself: whether the failure is transient. */
  retryable: boolean;
}

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
  /**
   * Decides whether a failure is retried: return false to give up at once (even on a transient failure), true to
   * retry (even a failure the library would not retry, such as a 403 while a new IAM grant propagates), or
   * undefined for the default. Retries still count against `maxAttempts`. Not called for aborts or for failures
   * of the final bookkeeping.
   */
  shouldRetry?: ((question: RetryQuestion) => boolean | undefined) | undefined;
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

  /** The user's verdict, else whether the failure is transient. A hook that throws stops the upload. */
  #shouldRetry(error: GcsUploadError, attempt: number): boolean {
    const hook = this.#settings.shouldRetry;
    if (hook === undefined) return error.retryable;
    let verdict: boolean | undefined;
    try {
      verdict = hook({ error, attempt, retryable: error.retryable });
    } catch (hookError) {
      throw new ListenerError('shouldRetry', hookError);
    }
    return verdict ?? error.retryable;
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
    const attempt = this.#failures + 1;
    if (!this.#shouldRetry(error, attempt)) throw error;
    this.#failures = attempt;
    if (this.#failures >= this.#settings.maxAttempts) {
      throw new RetryExhaustedError(this.#failures, error);
    }
    const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
    const delayMs = computeDelayMs(this.#failures, this.#settings, this.#random, retryAfterMs);
    onRetry?.({ attempt: this.#failures, delayMs, error });
    await sleep(delayMs, signal);
  }
}
