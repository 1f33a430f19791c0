/**
 * How `gcs-stream` prints a failure: one line with the message and the stable code, then one line per cause (code
 * and message of each, outermost first), so that a wrapper such as `UploadAbortedError` never hides what went wrong.
 * Every line goes through `oneLine`, which removes upload ids and bearer tokens; URLs lose their query strings, where
 * session ids and signatures live. Advice meant for library users (the `authClient` option) is replaced by what a
 * command-line user can do.
 */
import { causeChain, oneLine } from '../core/error-text.js';
import { EXIT_FAILURE, EXIT_USAGE } from './exit-codes.js';
import { UsageError } from './usage-error.js';

/** What the library tells its callers to check when credentials fail: an option a CLI user cannot reach. */
const LIBRARY_CREDENTIALS_ADVICE = /Check GOOGLE_APPLICATION_CREDENTIALS or the authClient option/g;
/** The same advice, for the command line. */
export const CLI_CREDENTIALS_ADVICE =
  'Sign in with `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account ' +
  'key file; for the local server (gcs-stream serve) set STORAGE_EMULATOR_HOST or --endpoint instead, no credentials needed';
/** How many causes are printed at most (a cycle or a very deep chain is cut). */
const MAX_CAUSES = 5;

/** The error's stable code: the library's `ERR_GCS_*`, a Node.js code (`EIO`), or its class name. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (typeof code === 'number') return String(code);
  return error instanceof Error ? error.name : 'ERR_UNKNOWN';
}

/** A message made fit for the terminal: one line, no secrets, no URL queries, CLI advice for credentials. */
export function cliText(message: string): string {
  const withoutQueries = message.replace(/(https?:\/\/[^\s?#"']+)\?[^\s#"']*/g, '$1?<query removed>');
  return oneLine(withoutQueries.replace(LIBRARY_CREDENTIALS_ADVICE, CLI_CREDENTIALS_ADVICE), 600);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The lines that describe `error`: `error: MESSAGE (CODE)`, then `cause: MESSAGE (CODE)` for each cause. */
export function describeError(error: unknown): string[] {
  const lines = [`error: ${cliText(messageOf(error))} (${codeOf(error)})`];
  const causes = error instanceof Error ? causeChain(error.cause) : [];
  for (const cause of causes.slice(0, MAX_CAUSES)) lines.push(`  cause: ${cliText(cause.message)} (${codeOf(cause)})`);
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  // A cause that is not an Error (a string, a status): its text, unless it is an object with nothing to show.
  if (causes.length === 0 && (typeof cause === 'string' || typeof cause === 'number')) lines.push(`  cause: ${cliText(String(cause))}`);
  return lines;
}

/** Prints `error` (and its causes) on stderr. */
export function printError(error: unknown): void {
  process.stderr.write(
    describeError(error)
      .map((line) => `gcs-stream: ${line}\n`)
      .join(''),
  );
}

/** Exit code for a failure: 2 for a usage error (the CLI's or an option the library refused), else 1. */
export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError || codeOf(error) === 'ERR_GCS_UPLOAD_INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}
