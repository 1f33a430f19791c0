/** The exit codes of `gcs-stream`, shared by its commands (the README's exit code tables list them). */

/** The command did what it was asked. */
export const EXIT_OK = 0;
/** The command failed (an upload, a read). */
export const EXIT_FAILURE = 1;
/** Bad arguments or option values: nothing was done. */
export const EXIT_USAGE = 2;
/** Interrupted by a signal: 128 + its number, as shells report it. */
export const EXIT_SIGNAL: Readonly<Record<InterruptSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

/** The signals every command handles. */
export type InterruptSignal = 'SIGINT' | 'SIGTERM';
