/**
 * What is known after a failure, as data: what became of the session and of the object, and how a stored object
 * differs from what was written. The error classes word these; the code that finds them out never writes prose.
 */

/** One way a stored object differs from the bytes written. */
export interface Mismatch {
  readonly field: 'size' | 'crc32c' | 'md5';
  readonly stored: string | undefined;
  readonly expected: string;
}

/** What became of the session (and the object) after a failure. */
export type Outcome =
  /** The failure came before a session was opened. */
  | { readonly kind: 'no-session' }
  /** The session was cancelled: nothing can be finalized any more. */
  | { readonly kind: 'cancelled' }
  /** The session no longer exists, and it created no object. */
  | { readonly kind: 'gone' }
  /** A generation this session should not have published was deleted (`deleted`), or could not be. */
  | { readonly kind: 'withdrawn'; readonly deleted: boolean; readonly generation: string | undefined }
  /** The resumed session had completed before this stream took it over; its object was left as it is. */
  | { readonly kind: 'completed-before-resume' }
  /** The upload completed (the user aborted too late): the object holds every byte written. */
  | { readonly kind: 'completed'; readonly generation: string | undefined }
  /** The final request was sent and neither the session nor the object could be asked what became of it. */
  | { readonly kind: 'final-unknown' }
  /** The final request was sent, and no object of that name exists. */
  | { readonly kind: 'no-object' }
  /** The final request was sent, and the object stored under that name is not this upload's. */
  | { readonly kind: 'not-ours'; readonly generation: string | undefined }
  /** The session could not be cancelled; without its total size it cannot create an object. */
  | { readonly kind: 'uncancelled' };

/** "size 10 instead of 12, crc32c AAAA instead of BBBB". */
export function describeMismatches(mismatches: readonly Mismatch[]): string {
  return mismatches.map((m) => `${m.field} ${m.stored ?? 'absent'} instead of ${m.expected}`).join(', ');
}

/** The words that end an error message: what became of the session, for `gs://bucket/name`. */
export function describeOutcome(outcome: Outcome, target: string): string {
  switch (outcome.kind) {
    case 'no-session':
      return 'no session was opened';
    case 'cancelled':
      return 'the session was cancelled and no object was created';
    case 'gone':
      return 'the session no longer exists and no object was created';
    case 'withdrawn':
      return outcome.deleted
        ? 'the corrupt generation was deleted'
        : `the corrupt generation could not be deleted: delete ${target}#${outcome.generation ?? '?'}`;
    case 'completed-before-resume':
      return 'the session had completed before this stream resumed it; the stored object was left as it is';
    case 'completed':
      return `the upload had already completed: generation ${outcome.generation ?? '?'} holds every byte written (see error.object)`;
    case 'final-unknown':
      return `the final request was sent and its outcome is unknown: check whether ${target} was replaced`;
    case 'no-object':
      return 'no object of that name exists: no object was created';
    case 'not-ours':
      return `the stored object (generation ${outcome.generation ?? '?'}) is not this upload's: no object was created`;
    case 'uncancelled':
      return 'the session could not be cancelled; without its total size it can never create an object';
  }
}
