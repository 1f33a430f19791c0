/**
 * The aftermath of a failed upload: cancel the session and find out, without guessing, whether an object was
 * created. Once the final request went out its lost answer may hide a completed upload: the DELETE's answer (a
 * finalized session answers with its object) or the object's metadata settles it. The result is data: success
 * after all, or the failure to report with an {@link Outcome} that the error classes word.
 */
import { ChecksumMismatchError, ProtocolError, UploadAbortedError, type GcsUploadError } from '../core/errors.js';
import type { ObjectCheck } from './object-check.js';
import type { Outcome } from '../core/outcome.js';
import type { CancelOutcome, ObjectResource } from '../core/responses.js';
import type { ResumableSession } from './session.js';

/** Longest wait for each request made after a failure (the session DELETE, the object lookup). */
const AFTERMATH_TIMEOUT_MS = 10_000;

/** Where the upload stood when it failed, as far as the aftermath cares. */
export type FailedPhase = 'opening' | 'resuming' | 'streaming' | 'final-sent' | 'completed-before-resume';

/** What the aftermath established. */
export type Settlement =
  /** The upload completed after all, with an object that matches what was written. */
  | { readonly kind: 'completed'; readonly object: ObjectResource }
  /** The upload failed with `failure`; `existing` is its object when one exists all the same (aborted too late). */
  | { readonly kind: 'failed'; readonly failure: GcsUploadError; readonly outcome: Outcome; readonly existing?: ObjectResource };

/** What the aftermath needs to know. */
export interface SettleInput {
  readonly session: ResumableSession;
  readonly failure: GcsUploadError;
  readonly phase: FailedPhase;
  readonly check: ObjectCheck;
  /** The object's total size, once the final request carried it. */
  readonly total: number | undefined;
}

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

/** Deletes a generation this session should not have published; returns whether that worked. Never throws. */
export async function withdraw(session: ResumableSession, object: ObjectResource, signal: AbortSignal): Promise<boolean> {
  if (object.generation === undefined) return false;
  try {
    return await session.deleteObject(object.generation, signal);
  } catch {
    return false;
  }
}

/** A failure that already withdrew a generation this session published says so itself. */
function withdrawalOf(failure: GcsUploadError): Outcome | undefined {
  if (failure instanceof ChecksumMismatchError && failure.failure.kind === 'stored') {
    return { kind: 'withdrawn', deleted: failure.failure.deleted, generation: failure.failure.generation };
  }
  if (failure instanceof ProtocolError && failure.violation.kind === 'premature-final') {
    return { kind: 'withdrawn', deleted: failure.violation.deleted, generation: failure.violation.generation };
  }
  return undefined;
}

/** Best-effort DELETE of the session, bounded in time, never throwing. */
async function cancel(session: ResumableSession): Promise<CancelOutcome> {
  try {
    return await withDeadline((signal) => session.cancel(signal));
  } catch {
    // Best effort: an uncancelled session expires on its own within a week.
    return { kind: 'unknown' };
  }
}

/** Cancels the session and establishes what became of the upload (see the module comment). */
export async function settle(input: SettleInput): Promise<Settlement> {
  const { session, failure, phase, check, total } = input;
  const failed = (outcome: Outcome, reported: GcsUploadError = failure, existing?: ObjectResource): Settlement =>
    existing === undefined ? { kind: 'failed', failure: reported, outcome } : { kind: 'failed', failure: reported, outcome, existing };
  if (session.uri === undefined) return failed({ kind: 'no-session' });
  if (phase === 'completed-before-resume') return failed({ kind: 'completed-before-resume' });
  const withdrawn = withdrawalOf(failure);
  if (withdrawn !== undefined) return failed(withdrawn);

  const cancelled = await cancel(session);
  const finalSent = phase === 'final-sent' && total !== undefined;
  // After the final request, a 499 alone does not prove there is no object: some emulators answer every DELETE
  // with 499, even for a session that has already finalized. The object lookup below settles it.
  if (cancelled.kind === 'cancelled' && !finalSent) return failed({ kind: 'cancelled' });

  const ours = (object: ObjectResource): Settlement =>
    failure instanceof UploadAbortedError
      ? failed({ kind: 'completed', generation: object.generation }, failure, object)
      : { kind: 'completed', object };

  if (cancelled.kind === 'completed') {
    // The session's own object: ours if nothing differs from what was written, else withdrawn.
    const object = cancelled.object;
    const mismatches = finalSent ? check.mismatches(object, total, 'all') : undefined;
    if (mismatches?.length === 0) return ours(object);
    const deleted = await withdraw(session, object, new AbortController().signal);
    const reported =
      mismatches === undefined
        ? failure
        : new ChecksumMismatchError({ kind: 'stored', mismatches, deleted, generation: object.generation });
    return failed({ kind: 'withdrawn', deleted, generation: object.generation }, reported);
  }
  if (cancelled.kind === 'gone' && !finalSent) return failed({ kind: 'gone' });
  if (!finalSent) return failed({ kind: 'uncancelled' });

  // Whatever is stored under the name may be someone else's: only a checksum proves it is ours.
  let lookupFailed = false;
  const stored = await withDeadline((signal) => session.getObject(signal)).catch(() => {
    lookupFailed = true;
    return undefined;
  });
  if (stored !== undefined && check.isOurs(stored, total)) return ours(stored);
  if (cancelled.kind === 'gone') return failed({ kind: 'gone' });
  if (lookupFailed) return failed({ kind: 'final-unknown' });
  return failed(stored === undefined ? { kind: 'no-object' } : { kind: 'not-ours', generation: stored.generation });
}
