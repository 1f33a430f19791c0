/**
 * Continuing a checkpoint's session: what the session holds, the checks that keep a different source from being
 * spliced onto its bytes, and adopting a session that had already completed.
 */
import type { BlockWindow } from './block-window.js';
import type { ObjectHasher } from '../core/checksum.js';
import type { UploadCheckpoint } from '../core/checkpoint.js';
import { ProtocolError, SourceMismatchError } from '../core/errors.js';
import type { ObjectCheck } from './object-check.js';
import type { ObjectResource, SessionState } from '../core/responses.js';

/** Checks the session's answer against the checkpoint: a session never holds less than it once confirmed. */
export function checkResumedState(state: SessionState, checkpoint: UploadCheckpoint): SessionState {
  if (!state.complete && state.committed < checkpoint.bytesCommitted) {
    throw new ProtocolError({ kind: 'below-checkpoint', holds: state.committed, recorded: checkpoint.bytesCommitted });
  }
  return state;
}

/**
 * What the window does with the writer's bytes that the session already holds: hash them into the committed
 * prefix and, when the source restarts before the checkpoint's offset, check that its first
 * `checkpoint.bytesCommitted` bytes hash to the checkpoint's CRC32C. `mismatch` is called once if they do not.
 */
export function skipGuard(
  checkpoint: UploadCheckpoint,
  start: number,
  hasher: ObjectHasher,
  mismatch: (error: SourceMismatchError) => void,
): (bytes: Uint8Array) => void {
  let offset = start;
  const checkAt =
    start < checkpoint.bytesCommitted && checkpoint.crc32c !== undefined && hasher.crcState !== undefined
      ? checkpoint.bytesCommitted
      : undefined;
  return (bytes) => {
    if (checkAt !== undefined && offset < checkAt && offset + bytes.length >= checkAt) {
      const head = checkAt - offset;
      hasher.update(bytes.subarray(0, head));
      if (hasher.crcState !== checkpoint.crc32c) mismatch(new SourceMismatchError({ kind: 'prefix-differs', bytes: checkAt }));
      hasher.update(bytes.subarray(head));
    } else {
      hasher.update(bytes);
    }
    offset += bytes.length;
  };
}

/**
 * The session had completed before this stream took it over: every byte of the source is skipped (and hashed)
 * until it ends, then checked against the session's object. A source that differs is a SourceMismatchError; the
 * object, made by an earlier process, is never withdrawn.
 */
export async function adoptCompleted(
  window: BlockWindow,
  check: ObjectCheck,
  object: ObjectResource,
  signal: AbortSignal,
): Promise<ObjectResource> {
  while (!window.ended) {
    await window.dataChanged();
    signal.throwIfAborted();
  }
  const mismatches = check.mismatches(object, window.bytesAccepted, 'all');
  if (mismatches.length > 0) throw new SourceMismatchError({ kind: 'completed-differs', mismatches });
  window.dispose();
  return object;
}
