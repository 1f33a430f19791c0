/**
 * The upload loop: opens the session, takes spans from the replay window, PUTs them one at a time, recovers after
 * failures, and verifies the final object. It knows nothing about Node streams; the writable feeds its window and
 * awaits its result.
 */
import { defaultAuthClient } from './auth.js';
import { ChunkBuffer, type Span } from './chunk-buffer.js';
import { ObjectHasher } from './checksum.js';
import type { UploadCheckpoint } from './checkpoint.js';
import {
  ChecksumMismatchError,
  GcsUploadError,
  ListenerError,
  NoProgressError,
  ProtocolError,
  SourceMismatchError,
  UploadAbortedError,
} from './errors.js';
import type { NormalizedOptions } from './options.js';
import { asUploadError, reconcile, recover, type Ledger } from './recover.js';
import { RequestPacer } from './pacing.js';
import { RetryBudget, type RetryEvent } from './retry.js';
import { debug } from './debug.js';
import { ResumableSession, type CancelOutcome, type ObjectResource, type SessionState } from './session.js';

/** How a failed upload ended: an object after all, or words for the error message. */
interface Settlement {
  /** The upload completed after all: the stream succeeds with it. */
  object?: ObjectResource;
  /** The upload's object exists, but the stream fails anyway (the user aborted too late): reported on the error. */
  existing?: ObjectResource;
  outcome: string;
  alive: boolean;
}

/** Which of the computed checksums a comparison uses (see #mismatches). */
type Checksums = 'validated' | 'all';

/** Progress counters; both only grow. */
export interface UploadProgress {
  /** Bytes taken from the writer. */
  bytesAccepted: number;
  /** Bytes GCS confirmed. */
  bytesCommitted: number;
}

/** Callbacks through which the uploader reports to the stream. */
export interface UploadObserver {
  session(uploadUri: string): void;
  progress(progress: UploadProgress): void;
  retry(event: RetryEvent): void;
  checkpoint(checkpoint: UploadCheckpoint): void;
}

/**
 * The observer, with every call guarded: a listener that throws is a bug in the caller's code, not a transient
 * fault, so it must not reach the retry loop (which would retry it, and open a new session each time). `fail`
 * stops the upload with a ListenerError instead.
 */
function guardObserver(observer: UploadObserver, fail: (error: ListenerError) => void): UploadObserver {
  const guard =
    <T>(event: keyof UploadObserver, call: (value: T) => void) =>
    (value: T): void => {
      try {
        call(value);
      } catch (error) {
        fail(new ListenerError(event, error));
      }
    };
  return {
    session: guard('session', (uri: string) => observer.session(uri)),
    progress: guard('progress', (progress: UploadProgress) => observer.progress(progress)),
    retry: guard('retry', (event: RetryEvent) => observer.retry(event)),
    checkpoint: guard('checkpoint', (checkpoint: UploadCheckpoint) => observer.checkpoint(checkpoint)),
  };
}

function debugRetry(event: RetryEvent): void {
  debug('retry', { attempt: event.attempt, delayMs: event.delayMs, code: event.error.code, status: event.error.status });
}

/** Bytes hashed per turn of the event loop while a request is in flight: about 0.25 ms of native CRC32C. */
const HASH_STEP = 1024 * 1024;

/** Longest wait for each request made after a failure (the session DELETE, the object lookup). */
const AFTERMATH_TIMEOUT_MS = 10_000;

/** Runs `request` with a signal that aborts after AFTERMATH_TIMEOUT_MS; leaves no timer behind. */
async function withDeadline<T>(request: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error('timed out')), AFTERMATH_TIMEOUT_MS);
  try {
    return await request(deadline.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** One resumable upload from open to verified object. */
export class Uploader {
  readonly window: ChunkBuffer;
  readonly #options: NormalizedOptions;
  readonly #observer: UploadObserver;
  readonly #session: ResumableSession;
  /**
   * Checksums of every byte accepted so far, fed by the window (while requests are in flight, and in full before it
   * hands out the final span): the whole object's once `#ledger.total` is set.
   */
  readonly #hasher: ObjectHasher;
  readonly #budget: RetryBudget;
  readonly #pacer: RequestPacer;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  readonly #abort = new AbortController();
  readonly #ledger: Ledger = { confirmed: 0, sentEnd: 0, total: undefined };
  /** Set once #verify withdrew (true) or failed to withdraw (false) a generation that did not match. */
  #withdrawn: boolean | undefined;
  /**
   * The resumed session had completed before this stream took it over: its object was created by an earlier
   * process, and is never this stream's to withdraw, whatever happens here.
   */
  #completedBeforeResume = false;
  #result: Promise<ObjectResource> | undefined;
  #hashing = false;

  constructor(options: NormalizedOptions, observer: UploadObserver) {
    this.#options = options;
    this.#observer = guardObserver(observer, (error) => this.abort(error));
    // Continuing from a checkpoint's offset, the CRC32C goes on from the checkpoint's state (unknown without one).
    const crcBefore = options.sourceOffset > 0 ? options.resume?.crc32c : 0;
    this.#hasher = new ObjectHasher(options.validation, crcBefore);
    this.window = new ChunkBuffer(options.chunkSize, options.bufferChunks, options.sourceOffset, this.#hasher, options.size);
    this.#budget = new RetryBudget(options.retry);
    this.#pacer = new RequestPacer(options.bufferChunks, options.chunkSize, options.retry.stallTimeoutMs);
    const client = options.authClient ?? defaultAuthClient(options.isEmulator);
    this.#session = new ResumableSession(client, options, options.retry.stallTimeoutMs, options.resume?.uploadUri);
    this.#ledger.confirmed = options.sourceOffset;
    this.#ledger.sentEnd = options.sourceOffset;
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
  }

  /** The session URI once known. */
  get uploadUri(): string | undefined {
    return this.#session.uri;
  }

  /** Bytes the server has confirmed. */
  get bytesCommitted(): number {
    return this.#ledger.confirmed;
  }

  /** Resolves once writes may flow: the session is open, or (resuming) its committed offset is known. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Starts the upload once; later calls return the same promise. */
  start(): Promise<ObjectResource> {
    this.#result ??= this.#run();
    return this.#result;
  }

  /** Stops everything in flight; the upload then fails with `reason` and cancels its session. */
  abort(reason: GcsUploadError): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(reason);
    // Waits on the window check the signal when woken. (Racing each wait against a long-lived "aborted" promise
    // instead would leave one reaction on it per wait: memory that grows with the upload.)
    this.window.interrupt();
  }

  async #run(): Promise<ObjectResource> {
    const signal = this.#abort.signal;
    try {
      if (this.#options.resume) {
        const completed = await this.#resume(signal);
        if (completed) return completed;
      } else {
        await this.#open(signal);
      }
      this.#resolveReady();
      for (;;) {
        const span = await this.#nextSpan(signal);
        const { state, recovered } = await this.#send(span, signal);
        if (state.complete && this.#ledger.total === undefined) {
          if (!this.#reachedDeclaredSize(state.object)) await this.#withdrawPremature(state.object, signal);
          // GCS completes a session with a declared size once that many bytes arrived: the success it is.
          this.window.hashSome(Infinity);
          this.#ledger.total = this.#options.size;
        }
        const outcome = reconcile(state, this.#ledger);
        if (outcome.complete) {
          const object = await this.#verify(outcome.object, signal);
          this.#ledger.confirmed = this.#ledger.total!;
          return object;
        }
        if (outcome.committed > this.#ledger.confirmed) {
          this.#commit(outcome.committed);
        } else if (!recovered) {
          // A 308 that took none of what was sent: count it as a failed attempt so that a server that never makes
          // progress cannot keep the loop spinning. (After a recovery the failure itself was already counted.)
          await this.#budget.failed(new NoProgressError(describeSpan(span)), signal, (e) => this.#retried(e));
        }
      }
    } catch (error) {
      let failure = signal.aborted ? asUploadError(signal.reason) : asUploadError(error);
      debug('upload failed', { code: failure.code, status: failure.status, committed: this.#ledger.confirmed });
      let settled: Settlement;
      try {
        settled = await this.#settle(failure);
      } catch (settleError) {
        // The session reported a completed object that does not match (it was withdrawn by #verify).
        failure = asUploadError(settleError);
        settled = { outcome: 'the stored object did not match and was deleted', alive: false };
      }
      this.window.dispose();
      if (settled.object) return settled.object;
      throw failure.attachContext({
        bucket: this.#options.bucket,
        name: this.#options.name,
        bytesAccepted: this.window.bytesAccepted,
        bytesCommitted: this.#ledger.confirmed,
        uploadUri: this.#session.uri,
        outcome: settled.outcome,
        sessionAlive: settled.alive,
        object: settled.existing,
      });
    }
  }

  /**
   * After a failure: cancel the session and find out, without guessing, whether an object was created. Once the
   * final request went out, its lost answer may hide a completed upload: the DELETE's answer or the object's
   * metadata settles it. A completed, verified upload is returned as a success unless the user aborted.
   */
  async #settle(failure: GcsUploadError): Promise<Settlement> {
    if (this.#session.uri === undefined) return { outcome: 'no session was opened', alive: false };
    if (this.#completedBeforeResume) {
      return { outcome: 'the session had completed before this stream resumed it; the stored object was left as it is', alive: false };
    }
    if (this.#withdrawn !== undefined) {
      return { outcome: this.#withdrawn ? 'the corrupt generation was deleted' : 'the corrupt generation could not be deleted: delete it', alive: false };
    }
    const cancel = await this.#cancel();
    const userAborted = failure instanceof UploadAbortedError;
    const finalSent = this.#ledger.total !== undefined;
    // After the final request, a 499 alone does not prove there is no object: some emulators answer every DELETE
    // with 499, even for a session that has already finalized. The object lookup below settles it.
    if (cancel.kind === 'cancelled' && !finalSent) return { outcome: 'the session was cancelled and no object was created', alive: false };
    let candidate: ObjectResource | undefined;
    let lookupFailed = false;
    if (cancel.kind === 'completed') {
      candidate = cancel.object;
    } else if (finalSent) {
      candidate = await withDeadline((signal) => this.#session.getObject(signal)).catch(() => {
        lookupFailed = true;
        return undefined;
      });
    }
    if (candidate !== undefined && this.#isOurs(candidate)) {
      if (userAborted) {
        return {
          outcome: `the upload had already completed: generation ${candidate.generation ?? '?'} holds every byte written (see error.object)`,
          alive: false,
          existing: candidate,
        };
      }
      debug('completed despite the failure', { generation: candidate.generation });
      this.#ledger.confirmed = this.#ledger.total!;
      return { object: await this.#verify(candidate, new AbortController().signal), outcome: '', alive: false };
    }
    if (cancel.kind === 'completed' && candidate !== undefined) {
      // The session finalized something that is not what was written: withdraw it (throws ChecksumMismatchError).
      await this.#verify(candidate, new AbortController().signal);
    }
    if (cancel.kind === 'gone') return { outcome: 'the session no longer exists and no object was created', alive: false };
    if (finalSent) {
      if (lookupFailed) {
        return { outcome: `the final request was sent and its outcome is unknown: check whether gs://${this.#options.bucket}/${this.#options.name} was replaced`, alive: false };
      }
      return candidate === undefined
        ? { outcome: 'no object of that name exists: no object was created', alive: false }
        : { outcome: `the stored object (generation ${candidate.generation ?? '?'}) is not this upload's: no object was created`, alive: false };
    }
    return { outcome: 'the session could not be cancelled; without its total size it can never create an object', alive: true };
  }

  /**
   * Whether `object` is this upload's: nothing differs from what was written, its CRC32C (or at least MD5) proves
   * it rather than being absent, and it is not the generation a precondition named.
   */
  #isOurs(object: ObjectResource): boolean {
    if (this.#ledger.total === undefined) return false;
    const whole = this.#hasher;
    if (this.#mismatches(object, 'all').length > 0) return false;
    const crc = whole.crc32c;
    if (crc === undefined && whole.md5 === undefined) return false; // nothing to tell our bytes from someone else's
    if (crc !== undefined && object.crc32c === undefined) return false;
    const expectedOld = this.#options.query.ifGenerationMatch;
    return expectedOld === undefined || object.generation !== expectedOld;
  }

  /**
   * How `object` differs from what was written: size, and every checksum both sides have. `validated` compares the
   * checksums the validation mode asks for (verifying a finished upload); `all` every checksum computed (telling
   * this upload's bytes from another object's).
   */
  #mismatches(object: ObjectResource, checksums: Checksums): string[] {
    const total = this.#ledger.total!;
    const whole = this.#hasher;
    const problems: string[] = [];
    if (object.size !== String(total)) problems.push(`size ${object.size} instead of ${total}`);
    const crc = checksums === 'all' ? whole.crc32c : whole.validatedCrc32c;
    if (crc !== undefined && object.crc32c !== undefined && object.crc32c !== crc) {
      problems.push(`crc32c ${object.crc32c} instead of ${crc}`);
    }
    const md5 = whole.md5;
    if (md5 !== undefined && object.md5Hash !== undefined && object.md5Hash !== md5) {
      problems.push(`md5 ${object.md5Hash} instead of ${md5}`);
    }
    return problems;
  }

  /** GCS confirmed bytes up to `committed`: free them, report. */
  #commit(committed: number): void {
    const crc = this.window.crcAt(committed);
    this.#ledger.confirmed = committed;
    this.window.release(committed);
    this.#budget.progressed();
    this.#observer.progress({ bytesAccepted: this.window.bytesAccepted, bytesCommitted: committed });
    this.#emitCheckpoint(crc);
  }

  /** Reports the committed state; `crc` is the CRC32C state of the committed prefix. */
  #emitCheckpoint(crc: number | undefined): void {
    const uploadUri = this.#session.uri;
    if (uploadUri === undefined) return;
    const checkpoint: UploadCheckpoint = {
      version: 1,
      uploadUri,
      bucket: this.#options.bucket,
      name: this.#options.name,
      bytesCommitted: this.#ledger.confirmed,
    };
    if (crc !== undefined) checkpoint.crc32c = crc;
    this.#observer.checkpoint(checkpoint);
  }

  /**
   * Continues a checkpoint's session: asks what it holds, then arranges for the writer's bytes up to there to be
   * hashed and skipped. Returns the object if the session had already completed (its bytes are then all skipped
   * and checked against it at the end).
   */
  async #resume(signal: AbortSignal): Promise<ObjectResource | undefined> {
    const checkpoint = this.#options.resume!;
    let state: SessionState;
    try {
      state = await this.#session.query(signal);
    } catch (error) {
      state = await this.#recoverFrom(error, signal);
    }
    this.#observer.session(checkpoint.uploadUri);
    const start = this.#options.sourceOffset;
    const guard = this.#skipGuard(checkpoint, start);
    if (state.complete) {
      // An earlier process finished this session: the source must be the bytes of that object, and the object is
      // left alone whatever this stream finds.
      this.#completedBeforeResume = true;
      this.#ledger.confirmed = Number(state.object.size);
      this.window.skipTo(Number.MAX_SAFE_INTEGER, guard);
      this.#resolveReady();
      while (!this.window.ended) {
        await this.window.dataChanged();
        signal.throwIfAborted();
      }
      const total = this.window.bytesAccepted;
      this.#ledger.total = total;
      const problems = this.#mismatches(state.object, 'all');
      if (problems.length > 0) {
        throw new SourceMismatchError(
          `the session had already completed, and its object differs from this source (${problems.join(', ')}); the stored object was left as it is`,
        );
      }
      this.window.dispose();
      this.#ledger.confirmed = total;
      return state.object;
    }
    if (state.committed < checkpoint.bytesCommitted) {
      throw new ProtocolError(
        `the session holds ${state.committed} bytes but the checkpoint recorded ${checkpoint.bytesCommitted} as committed`,
      );
    }
    this.#ledger.confirmed = state.committed;
    this.#ledger.sentEnd = state.committed;
    this.window.skipTo(state.committed, guard);
    debug('resumed', { committed: state.committed, sourceStart: start });
    return undefined;
  }

  /**
   * Hashes skipped bytes into the committed prefix and, when the source restarts from byte 0, checks that its first
   * `checkpoint.bytesCommitted` bytes hash to the checkpoint's CRC32C: a different source must not be spliced in.
   */
  #skipGuard(checkpoint: UploadCheckpoint, start: number): (bytes: Uint8Array) => void {
    let offset = start;
    const checkAt = start < checkpoint.bytesCommitted && checkpoint.crc32c !== undefined && this.#hasher.crcState !== undefined
      ? checkpoint.bytesCommitted
      : undefined;
    return (bytes) => {
      if (checkAt !== undefined && offset < checkAt && offset + bytes.length >= checkAt) {
        const head = checkAt - offset;
        this.#hasher.update(bytes.subarray(0, head));
        if (this.#hasher.crcState !== checkpoint.crc32c) {
          this.abort(new SourceMismatchError(`the source's first ${checkAt} bytes differ from the bytes uploaded before the checkpoint`));
        }
        this.#hasher.update(bytes.subarray(head));
      } else {
        this.#hasher.update(bytes);
      }
      offset += bytes.length;
    };
  }

  /** After a failed request: an abort ends the upload; anything else goes through the retry budget and recovery. */
  #recoverFrom(error: unknown, signal: AbortSignal): Promise<SessionState> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return recover(this.#session, this.#budget, error, signal, (e) => this.#retried(e));
  }

  #retried(event: RetryEvent): void {
    debugRetry(event);
    this.#observer.retry(event);
  }

  async #open(signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        const startedAt = performance.now();
        let sentAt: number | undefined;
        const uri = await this.#session.open(signal, () => {
          sentAt = performance.now();
        });
        // The session's answer time is the pacer's first latency sample.
        if (sentAt !== undefined) this.#pacer.observe(startedAt, sentAt, performance.now(), 0);
        this.#observer.session(uri);
        this.#emitCheckpoint(this.window.crcAt(this.#ledger.confirmed));
        return;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        // Opening twice is harmless: an unused session simply expires.
        await this.#budget.failed(asUploadError(error), signal, (e) => this.#retried(e));
      }
    }
  }

  /**
   * The next request body. When the pacer prefers whole-window requests, a ready chunk is held until the window
   * fills (and the writer shows more) or ends, but never longer than one measured answer wait: a source that pauses
   * does not hold data back.
   */
  async #nextSpan(signal: AbortSignal): Promise<Span> {
    let holdUntil: number | undefined;
    for (;;) {
      signal.throwIfAborted();
      const whole = this.#options.adaptiveRequests && this.#pacer.wholeWindow(this.window.fastestRecentFillMs);
      const span = this.window.nextSpan(whole);
      if (span) return span;
      if (whole && this.window.nextSpan(false) !== undefined) {
        const now = performance.now();
        holdUntil ??= now + this.#pacer.latencyMs!;
        if (now >= holdUntil) return this.window.nextSpan(true, true) ?? this.window.nextSpan(false)!;
        let timer: NodeJS.Timeout | undefined;
        const held = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, holdUntil! - now);
        });
        await Promise.race([this.window.dataChanged(), held]).finally(() => clearTimeout(timer));
        continue;
      }
      if (this.window.ended && this.window.bytesAccepted < this.window.skipUntil) {
        throw new SourceMismatchError(
          `the source ended after ${this.window.bytesAccepted} bytes, but the session already holds ${this.window.skipUntil}`,
        );
      }
      await this.window.dataChanged();
    }
  }

  /** PUTs a span; after any failure, recovers the server's state instead. */
  async #send(span: Span, signal: AbortSignal): Promise<{ state: SessionState; recovered: boolean }> {
    const end = span.offset + span.body.length;
    this.#ledger.sentEnd = Math.max(this.#ledger.sentEnd, end);
    let hash: string | undefined;
    if (span.final) {
      this.#ledger.total = end;
      hash = this.#hasher.header();
    }
    const startedAt = performance.now();
    let sentAt: number | undefined;
    try {
      const answer = this.#session.put(span.offset, span.body, span.final ? end : undefined, hash, signal, () => {
        sentAt = performance.now();
      });
      this.#hashWhileWaiting();
      const state = await answer;
      if (!span.final && sentAt !== undefined) this.#pacer.observe(startedAt, sentAt, performance.now(), span.body.length);
      return { state, recovered: false };
    } catch (error) {
      const state = await this.#recoverFrom(error, signal);
      debug('recovered', { committed: state.complete ? 'complete' : state.committed, confirmed: this.#ledger.confirmed });
      return { state, recovered: true };
    }
  }

  /**
   * Hashes held bytes a step per turn of the event loop until caught up: while a request is in flight the CPU
   * would otherwise wait, and the writer then fills without hashing (commits and the final request hash whatever is
   * left themselves).
   */
  #hashWhileWaiting(): void {
    if (this.#hashing) return;
    this.#hashing = true;
    const step = (): void => {
      if (this.window.hashSome(HASH_STEP)) setImmediate(step);
      else this.#hashing = false;
    };
    setImmediate(step);
  }

  /**
   * The session reported a finished object although no request carried the total size: a server that finalizes on
   * a status query (some emulators do; GCS never does) published a truncated object. Withdraw that generation
   * (it is this session's, so nothing else is touched) and fail with what happened.
   */
  async #withdrawPremature(object: ObjectResource, signal: AbortSignal): Promise<never> {
    const deleted = await this.#withdraw(object, signal);
    // Truncated only if the writer had supplied more than the object holds; otherwise the writer had not ended yet.
    const what = Number(object.size) < this.window.bytesAccepted ? 'truncated generation' : 'generation';
    throw new ProtocolError(
      `the server finalized the object at ${object.size} bytes before the client sent its total size ` +
        `(${this.window.bytesAccepted} bytes were written; GCS never does this, some emulators do on a status query); ` +
        (deleted
          ? `that ${what} was deleted`
          : `deleting that ${what} failed: delete gs://${this.#options.bucket}/${this.#options.name}#${object.generation ?? '?'} by hand`),
    );
  }

  /**
   * Whether the session completed because it received the declared size (GCS completes such a session whatever
   * the request said): every byte up to the size was sent and the object has that size.
   */
  #reachedDeclaredSize(object: ObjectResource): boolean {
    const size = this.#options.size;
    return size !== undefined && this.#ledger.sentEnd === size && this.window.bytesAccepted === size && object.size === String(size);
  }

  /** The object must have exactly the bytes written: size and every checksum the validation mode computes. */
  async #verify(object: ObjectResource, signal: AbortSignal): Promise<ObjectResource> {
    const problems = this.#mismatches(object, 'validated');
    if (problems.length === 0) {
      this.window.dispose();
      return object;
    }
    const deleted = await this.#withdraw(object, signal);
    throw new ChecksumMismatchError(
      `The stored object does not match what was written (${problems.join(', ')}); ` +
        (deleted ? 'the corrupt generation was deleted' : 'deleting the corrupt generation failed: delete it by hand'),
    );
  }

  /** Deletes a generation this session should not have published; records (and returns) whether that worked. */
  async #withdraw(object: ObjectResource, signal: AbortSignal): Promise<boolean> {
    let deleted = false;
    if (object.generation !== undefined) {
      try {
        deleted = await this.#session.deleteObject(object.generation, signal);
      } catch {
        deleted = false;
      }
    }
    this.#withdrawn = deleted;
    return deleted;
  }

  /** Best-effort DELETE of the session, bounded in time, never throwing. */
  async #cancel(): Promise<CancelOutcome> {
    try {
      return await withDeadline((signal) => this.#session.cancel(signal));
    } catch {
      // Best effort: an uncancelled session expires on its own within a week.
      return { kind: 'unknown' };
    }
  }
}

function describeSpan(span: Span): string {
  return span.body.length === 0 ? 'Finalizing the upload' : `Uploading bytes ${span.offset}-${span.offset + span.body.length - 1}`;
}
