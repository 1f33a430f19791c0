/**
 * `UsageError`: the command line is wrong (bad arguments, an unreadable source or checkpoint file). The CLI exits
 * with code 2 for it, as for the library's `InvalidArgumentError`.
 */

/** The command line cannot be carried out as given; nothing was uploaded. */
export class UsageError extends Error {
  /** Stable identifier, printed after the message. */
  readonly code = 'ERR_GCS_STREAM_USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
