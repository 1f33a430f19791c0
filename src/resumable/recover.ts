/**
 * Recovery after a failed request, and the checks that keep the client's view of the committed offset honest.
 * `recover()` waits out the backoff, asks the session how much it has, and repeats until it gets an answer or the
 * retry budget says stop. `reconcile()` checks any answer against what was confirmed and what was sent: the
 * committed offset may only move forward and never past the bytes actually sent.
 */
import { GcsUploadError, NetworkError, ProtocolError } from '../core/errors.js';
import type { ObjectResource, SessionState } from '../core/responses.js';
import type { ResumableSession } from './session.js';

/** What the client knows about the session's offset. */
export interface Ledger {
  /** The committed offset: the highest the server has reported. */
  committed: number;
  /** End of the furthest byte range ever sent. */
  sentEnd: number;
  /** Total size, once a request carried it. */
  total: number | undefined;
}

/** The outcome of one answer from the server. */
export type Reconciled =
  { readonly complete: false; readonly committed: number } | { readonly complete: true; readonly object: ObjectResource };

/** Validates a server answer against the ledger; throws `ProtocolError` for impossible ones. */
export function reconcile(state: SessionState, ledger: Readonly<Ledger>): Reconciled {
  if (state.complete) {
    if (ledger.total === undefined) {
      throw new ProtocolError({ kind: 'final-before-total' });
    }
    return state;
  }
  const { committed } = state;
  if (committed < ledger.committed) {
    throw new ProtocolError({ kind: 'offset-backwards', reported: committed, committed: ledger.committed });
  }
  if (committed > ledger.sentEnd) {
    throw new ProtocolError({ kind: 'offset-beyond-sent', reported: committed, sent: ledger.sentEnd });
  }
  return state;
}

/** Turns anything thrown by a request into a typed error (an abort reason passes through untouched). */
export function asUploadError(error: unknown): GcsUploadError {
  return error instanceof GcsUploadError ? error : new NetworkError('A request', error);
}

/**
 * After `failure`, retries the status query until the server answers. `charge` counts each failure against the
 * retry budget and waits the backoff; it throws (the failure itself if it is not to be retried, or
 * `RetryExhaustedError` when the budget is spent), which ends the recovery.
 */
export async function recover(
  session: ResumableSession,
  charge: (failure: GcsUploadError) => Promise<void>,
  failure: unknown,
  signal: AbortSignal,
): Promise<SessionState> {
  let error = failure;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    await charge(asUploadError(error));
    try {
      return await session.query(signal);
    } catch (queryError) {
      error = queryError;
    }
  }
}
