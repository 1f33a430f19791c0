/**
 * The upload loop: opens (or resumes) the session, takes spans from the replay window, PUTs them one at a time,
 * recovers after failures, and verifies the final object. It knows nothing about Node streams; the writable feeds
 * its window and awaits its result. The aftermath of a failure is `settle.ts`'s, resuming is `resume.ts`'s.
 *
 * Over 350 lines because the upload's phases and the one loop that moves between them are kept together: split,
 * each piece would need the ledger, the phase and the budget passed around; what could stand alone has moved out
 * (settle, resume, object-check, flush-waiters, upload-observer, recover, pacing).
 */
import { clientFor } from '../core/auth.js';
import { BlockWindow, type Span } from './block-window.js';
import { ObjectHasher } from '../core/checksum.js';
import type { UploadCheckpoint } from '../core/checkpoint.js';
import { guardObserver, type UploadObserver } from './upload-observer.js';
import { ChecksumMismatchError, GcsUploadError, NoProgressError, ProtocolError, SourceMismatchError } from '../core/errors.js';
import { FlushWaiters } from './flush-waiters.js';
import { ObjectCheck } from './object-check.js';
import type { NormalizedOptions } from '../core/options.js';
import { asUploadError, reconcile, recover, type Ledger } from './recover.js';
import { RequestPacer, type RequestMode } from './pacing.js';
import { adoptCompleted, checkResumedState, skipGuard } from './resume.js';
import { RetryBudget } from '../core/retry.js';
import { settle, withdraw } from './settle.js';
import { debug, debugEnabled } from '../core/debug.js';
import type { ObjectResource, SessionState } from '../core/responses.js';
import { ResumableSession } from './session.js';

/**
 * Where the upload stands.
 * - `opening`: the session is being opened; `resuming`: a checkpoint's session is being asked what it holds.
 * - `streaming`: requests carry bytes; none has carried the total size yet.
 * - `final-sent`: a request carried the total size: the object may exist from here on.
 * - `completed-before-resume`: the resumed session had already completed; the source is checked against it.
 * - `settling`: a failure's aftermath is under way (see settle.ts); `done`: the upload ended, either way.
 */
export type UploadPhase = 'opening' | 'resuming' | 'streaming' | 'final-sent' | 'completed-before-resume' | 'settling' | 'done';

/** One resumable upload from open to verified object. */
export class Uploader {
  readonly window: BlockWindow;
  readonly #options: NormalizedOptions;
  readonly #observer: UploadObserver;
  readonly #session: ResumableSession;
  /**
   * Checksums of every byte accepted so far, fed by the window (while requests are in flight, and in full before it
   * hands out the final span): the whole object's once the final span went out.
   */
  readonly #hasher: ObjectHasher;
  readonly #check: ObjectCheck;
  readonly #budget: RetryBudget;
  readonly #pacer: RequestPacer;
  /** The sizing last logged (debug output only). */
  #lastSizing: { mode: RequestMode; growTo: number } | undefined;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  readonly #abort = new AbortController();
  readonly #ledger: Ledger = { committed: 0, sentEnd: 0, total: undefined };
  #phase: UploadPhase;
  #result: Promise<ObjectResource> | undefined;
  /** flush() calls waiting for the committed offset to reach their target. */
  readonly #flushes = new FlushWaiters();

  /**
   * `prepared`: a window (and the hasher it feeds) filled before the object's name was known, which this upload
   * then sends (a parallel upload's first part, see parallel/part-upload.ts); its limits must match `options`.
   */
  constructor(options: NormalizedOptions, observer: UploadObserver, prepared?: { window: BlockWindow; hasher: ObjectHasher }) {
    this.#options = options;
    this.#observer = guardObserver(observer, (error) => this.abort(error));
    // Continuing from a checkpoint's offset, the CRC32C goes on from the checkpoint's state (unknown without one).
    const crcBefore = options.sourceOffset > 0 ? options.resume?.crc32c : 0;
    this.#hasher = prepared?.hasher ?? new ObjectHasher(options.validation, crcBefore);
    this.#check = new ObjectCheck(this.#hasher, options.query.ifGenerationMatch);
    this.window =
      prepared?.window ??
      new BlockWindow(
        {
          requestBytes: options.chunkSize,
          capBytes: options.chunkSize * options.bufferChunks,
          exact: !options.adaptiveRequests,
          retainWrites: options.retainWrites,
          checksumWorker: options.checksumWorker,
        },
        options.memory.open(),
        options.sourceOffset,
        this.#hasher,
        options.size,
      );
    this.#budget = new RetryBudget(options.retry);
    this.#pacer = new RequestPacer(options.bufferChunks, options.chunkSize, options.retry.stallTimeoutMs);
    this.#session = new ResumableSession(clientFor(options), options, options.retry.stallTimeoutMs, options.resume?.uploadUri);
    this.#ledger.committed = options.sourceOffset;
    this.#ledger.sentEnd = options.sourceOffset;
    this.#phase = options.resume ? 'resuming' : 'opening';
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
    return this.#ledger.committed;
  }

  /** Where the upload stands. */
  get phase(): UploadPhase {
    return this.#phase;
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

  /**
   * Commits what can be committed now (every full block accepted so far) and resolves with the committed offset
   * once GCS confirmed it; rejects if the upload fails first.
   */
  flush(): Promise<number> {
    if (this.#phase === 'done') return this.start().then(() => this.#ledger.committed);
    const target = this.window.flushableEnd();
    if (target <= this.#ledger.committed) return Promise.resolve(this.#ledger.committed);
    const flushed = this.#flushes.add(target);
    this.window.interrupt();
    return flushed;
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
      const object = await this.#upload(signal);
      this.#phase = 'done';
      this.#flushes.reached(this.#ledger.committed, this.#phase === 'done');
      return object;
    } catch (error) {
      const failure = signal.aborted ? asUploadError(signal.reason) : asUploadError(error);
      debug('upload failed', { code: failure.code, status: failure.status, committed: this.#ledger.committed });
      const phase = this.#phase;
      this.#phase = 'settling';
      const settled = await settle({
        session: this.#session,
        failure,
        phase: phase === 'settling' || phase === 'done' ? 'streaming' : phase,
        check: this.#check,
        total: this.#ledger.total,
      });
      this.window.dispose();
      this.#phase = 'done';
      if (settled.kind === 'completed') {
        debug('completed despite the failure', { generation: settled.object.generation });
        this.#ledger.committed = this.#ledger.total!;
        this.#flushes.reached(this.#ledger.committed, this.#phase === 'done');
        return settled.object;
      }
      this.#flushes.fail(settled.failure);
      throw settled.failure.attachContext({
        bucket: this.#options.bucket,
        name: this.#options.name,
        bytesAccepted: this.window.bytesAccepted,
        bytesCommitted: this.#ledger.committed,
        uploadUri: this.#session.uri,
        outcome: settled.outcome,
        object: settled.existing,
      });
    }
  }

  /** Opens or resumes the session, then sends the window's spans until the object is verified. */
  async #upload(signal: AbortSignal): Promise<ObjectResource> {
    if (this.#options.resume) {
      const completed = await this.#resume(signal);
      if (completed) return completed;
    } else {
      await this.#open(signal);
      // The writer waited through the open: the window grows by what it fell short (within what the mode allows).
      this.#requestMode();
      this.window.waitEnded();
    }
    this.#phase = 'streaming';
    this.#resolveReady();
    for (;;) {
      const span = await this.#nextSpan(signal);
      const { state, recovered } = await this.#send(span, signal);
      if (state.complete && this.#phase !== 'final-sent') {
        if (!this.#reachedDeclaredSize(state.object)) await this.#withdrawPremature(state.object, signal);
        // GCS completes a session with a declared size once that many bytes arrived: the success it is.
        this.window.hashSome(Infinity);
        this.#ledger.total = this.#options.size;
        this.#phase = 'final-sent';
      }
      const outcome = reconcile(state, this.#ledger);
      if (outcome.complete) {
        const object = await this.#verify(outcome.object, signal);
        this.#ledger.committed = this.#ledger.total!;
        return object;
      }
      if (outcome.committed > this.#ledger.committed) {
        this.#commit(outcome.committed);
      } else if (!recovered) {
        // A 308 that took none of what was sent: count it as a failed attempt so that a server that never makes
        // progress cannot keep the loop spinning. (After a recovery the failure itself was already counted.)
        await this.#charge(new NoProgressError(describeSpan(span)), signal);
      }
    }
  }

  /** GCS confirmed bytes up to `committed`: free them, report. */
  #commit(committed: number): void {
    const crc = this.window.crcAt(committed);
    this.#ledger.committed = committed;
    this.window.release(committed);
    this.#budget.progressed();
    this.#observer.progress({ bytesAccepted: this.window.bytesAccepted, bytesCommitted: committed });
    this.#emitCheckpoint(crc);
    this.#flushes.reached(this.#ledger.committed, this.#phase === 'done');
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
      bytesCommitted: this.#ledger.committed,
    };
    if (crc !== undefined) checkpoint.crc32c = crc;
    this.#observer.checkpoint(checkpoint);
  }

  /**
   * Continues a checkpoint's session: asks what it holds, then arranges for the writer's bytes up to there to be
   * hashed and skipped. Returns the object if the session had already completed (the source is then checked
   * against it, see resume.ts).
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
    const guard = skipGuard(checkpoint, this.#options.sourceOffset, this.#hasher, (error) => this.abort(error));
    state = checkResumedState(state, checkpoint);
    if (state.complete) {
      this.#phase = 'completed-before-resume';
      this.#ledger.committed = Number(state.object.size);
      this.window.skipTo(Number.MAX_SAFE_INTEGER, guard);
      this.#resolveReady();
      return adoptCompleted(this.window, this.#check, state.object, signal);
    }
    this.#ledger.committed = state.committed;
    this.#ledger.sentEnd = state.committed;
    this.window.skipTo(state.committed, guard);
    debug('resumed', { committed: state.committed, sourceStart: this.#options.sourceOffset });
    return undefined;
  }

  /** After a failed request: an abort ends the upload; anything else goes through the retry budget and recovery. */
  #recoverFrom(error: unknown, signal: AbortSignal): Promise<SessionState> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return recover(this.#session, (failure) => this.#charge(failure, signal), error, signal);
  }

  /**
   * The one place that charges the retry budget: waits the backoff (reporting the retry), or throws when the
   * failure is not to be retried or the budget is spent.
   */
  #charge(failure: GcsUploadError, signal: AbortSignal): Promise<void> {
    return this.#budget.failed(failure, signal, (event) => {
      debug('retry', { attempt: event.attempt, delayMs: event.delayMs, code: event.error.code, status: event.error.status });
      this.#observer.retry(event);
    });
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
        this.#emitCheckpoint(this.window.crcAt(this.#ledger.committed));
        return;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        // Opening twice is harmless: an unused session simply expires.
        await this.#charge(asUploadError(error), signal);
      }
    }
  }

  /**
   * The next request body. What flush() asked for, or what has waited `maxUncommittedMs`, goes first, whatever the
   * sizing would wait for. When the pacer prefers whole-window requests, a ready chunk is held until the window
   * fills (and the writer shows more) or ends, but never longer than one measured answer wait: a source that pauses
   * does not hold data back.
   */
  async #nextSpan(signal: AbortSignal): Promise<Span> {
    const window = this.window;
    let holdUntil: number | undefined;
    let shortUntil: number | undefined;
    for (;;) {
      signal.throwIfAborted();
      const now = performance.now();
      const since = window.committableSince;
      const overdueAt = since === undefined ? undefined : since + this.#options.maxUncommittedMs;
      const flushTo = Math.max(overdueAt !== undefined && now >= overdueAt ? window.flushableEnd() : 0, this.#flushes.highestTarget);
      if (flushTo > window.committed) {
        const span = window.flushSpan(flushTo);
        if (span) return span;
      }
      const mode = this.#requestMode();
      const span = window.nextSpan(mode);
      if (span) return span;
      let wakeAt = overdueAt;
      if (mode === 'chunks' && this.#options.adaptiveRequests && window.flushableEnd() > window.committed) {
        // Full blocks short of a chunk: they wait a moment for the chunk to fill, then go on their own.
        shortUntil ??= now + this.#pacer.shortHoldMs(window.recentFillMs);
        if (now >= shortUntil) {
          const short = window.flushSpan(window.flushableEnd());
          if (short) return short;
        }
        wakeAt = Math.min(wakeAt ?? Infinity, shortUntil);
      }
      if (mode !== 'chunks' && window.nextSpan('chunks') !== undefined) {
        holdUntil ??= now + this.#pacer.latencyMs!;
        if (now >= holdUntil) return window.nextSpan(mode, true) ?? window.nextSpan('chunks')!;
        wakeAt = Math.min(wakeAt ?? Infinity, holdUntil);
      }
      if (window.ended && window.bytesAccepted < window.skipUntil) {
        throw new SourceMismatchError({ kind: 'ended-early', supplied: window.bytesAccepted, holds: window.skipUntil });
      }
      await untilDataOr(window, wakeAt);
    }
  }

  /** How the next request is sized (the pacer's choice), and how far the window may grow for it. */
  #requestMode(): RequestMode {
    const { adaptiveRequests, chunkSize, bufferChunks } = this.#options;
    const mode = adaptiveRequests ? this.#pacer.requestMode(this.window.recentFillMs, this.window.targetBytes, chunkSize) : 'chunks';
    const growTo = this.#pacer.growToBytes(chunkSize, chunkSize * bufferChunks, mode);
    this.window.setGrowTo(growTo);
    if (debugEnabled() && (mode !== this.#lastSizing?.mode || growTo !== this.#lastSizing.growTo)) {
      this.#lastSizing = { mode, growTo };
      debug('sizing', {
        mode,
        growTo,
        target: this.window.targetBytes,
        fixedMs: this.#pacer.fixedLatencyMs?.toFixed(1),
        latencyMs: this.#pacer.latencyMs?.toFixed(1),
        fillMs: this.window.recentFillMs?.toFixed(1),
        busy: this.#pacer.busyShare?.toFixed(2),
      });
    }
    return mode;
  }

  /** PUTs a span; after any failure, recovers the server's state instead. */
  async #send(span: Span, signal: AbortSignal): Promise<{ state: SessionState; recovered: boolean }> {
    const end = span.offset + span.length;
    this.#ledger.sentEnd = Math.max(this.#ledger.sentEnd, end);
    let hash: string | undefined;
    if (span.final) {
      this.#ledger.total = end;
      this.#phase = 'final-sent';
      hash = this.#hasher.header();
    }
    const startedAt = performance.now();
    let sentAt: number | undefined;
    try {
      const answer = this.#session.put(span.offset, span.pieces, span.final ? end : undefined, hash, signal, () => {
        sentAt = performance.now();
      });
      this.window.hashInBackground();
      const state = await answer;
      if (!span.final && sentAt !== undefined) this.#pacer.observe(startedAt, sentAt, performance.now(), span.length);
      return { state, recovered: false };
    } catch (error) {
      const state = await this.#recoverFrom(error, signal);
      debug('recovered', { committed: state.complete ? 'complete' : state.committed, confirmed: this.#ledger.committed });
      return { state, recovered: true };
    }
  }

  /**
   * Whether the session completed because it received the declared size (GCS completes such a session whatever
   * the request said): every byte up to the size was sent and the object has that size.
   */
  #reachedDeclaredSize(object: ObjectResource): boolean {
    const size = this.#options.size;
    return size !== undefined && this.#ledger.sentEnd === size && this.window.bytesAccepted === size && object.size === String(size);
  }

  /**
   * The session reported a finished object although no request carried the total size: a server that finalizes on
   * a status query (some emulators do; GCS never does) published a truncated object. Withdraw that generation
   * (it is this session's, so nothing else is touched) and fail with what happened.
   */
  async #withdrawPremature(object: ObjectResource, signal: AbortSignal): Promise<never> {
    const deleted = await withdraw(this.#session, object, signal);
    throw new ProtocolError({
      kind: 'premature-final',
      objectSize: object.size,
      bytesWritten: this.window.bytesAccepted,
      deleted,
      generation: object.generation,
      target: `gs://${this.#options.bucket}/${this.#options.name}`,
    });
  }

  /** The object must have exactly the bytes written: size and every checksum the validation mode computes. */
  async #verify(object: ObjectResource, signal: AbortSignal): Promise<ObjectResource> {
    const mismatches = this.#check.mismatches(object, this.#ledger.total!, 'validated');
    if (mismatches.length === 0) {
      this.window.dispose();
      return object;
    }
    const deleted = await withdraw(this.#session, object, signal);
    throw new ChecksumMismatchError({ kind: 'stored', mismatches, deleted, generation: object.generation });
  }
}

function describeSpan(span: Span): string {
  return span.length === 0 ? 'Finalizing the upload' : `Uploading bytes ${span.offset}-${span.offset + span.length - 1}`;
}

/** Resolves when the window's data changes, or at `wakeAt` (performance.now() time) if given; leaves no timer. */
async function untilDataOr(window: BlockWindow, wakeAt: number | undefined): Promise<void> {
  if (wakeAt === undefined || !Number.isFinite(wakeAt)) return window.dataChanged();
  let timer: NodeJS.Timeout | undefined;
  const due = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, wakeAt - performance.now()));
  });
  await Promise.race([window.dataChanged(), due]).finally(() => clearTimeout(timer));
}
