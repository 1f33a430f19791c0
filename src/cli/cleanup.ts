/**
 * `gcs-stream cleanup gs://BUCKET[/PREFIX] [--older-than DURATION] [--dry-run]`: deletes the temporary part objects
 * that parallel composite uploads left behind (a process that crashed, or a delete that kept failing). It lists the
 * objects under PREFIX (default `gcs-stream-parts/`, the default `partPrefix`) created more than DURATION ago
 * (default 24h, so that uploads still running are left alone), deletes each of them in the generation listed (an
 * object written again since is not touched), prints each one it deleted on stdout and each one it could not on
 * stderr. Exit 0 when every object found was deleted, 1 when any could not be (or the listing failed), 2 on a usage
 * error, 130 / 143 on a signal.
 */
import type { Command } from 'commander';
import { clientFor } from '../core/auth.js';
import { oneLine } from '../core/error-text.js';
import { DEFAULT_PART_PREFIX, isEmulatorEndpoint, resolveEndpoint } from '../core/options.js';
import { DEFAULT_RETRY, type RetryEvent } from '../core/retry.js';
import { ObjectApi, type ListedObject } from '../parallel/object-api.js';
import { UsageError } from './usage-error.js';

// Where temporary parts are named by default: the default `partPrefix` of parallel uploads (one definition).
export { DEFAULT_PART_PREFIX };
/** Default `--older-than`: a day, far beyond any upload still running. */
export const DEFAULT_CLEANUP_AGE_MS = 24 * 60 * 60 * 1000;
/** Deletes in flight at once. */
const CONCURRENT_DELETES = 8;

/** Parsed flags of `gcs-stream cleanup`. */
export interface CleanupFlags {
  /** `--older-than`, in ms. */
  olderThan?: number;
  dryRun?: boolean;
  endpoint?: string;
  userProject?: string;
}

/** A bucket and a name prefix. */
export interface GsPrefix {
  bucket: string;
  prefix: string;
}

/** What a cleanup did. */
export interface CleanupReport {
  /** Deleted (or, with `dryRun`, would be deleted); `gone` ones (deleted meanwhile by someone else) included. */
  readonly deleted: readonly ListedObject[];
  /** Could not be deleted, with why. */
  readonly failed: readonly { readonly object: ListedObject; readonly error: unknown }[];
  /** Under the prefix but not older than the age: left alone. */
  readonly kept: number;
}

/** What {@link cleanupParts} is asked to do. */
export interface CleanupRequest extends GsPrefix {
  readonly api: ObjectApi;
  /** Only objects created more than this long before `now`. */
  readonly olderThanMs: number;
  /** List only; delete nothing. */
  readonly dryRun?: boolean | undefined;
  /** Told of each object as it is deleted (or would be), and of each that could not be. */
  readonly onDeleted?: ((object: ListedObject) => void) | undefined;
  readonly onFailed?: ((object: ListedObject, error: unknown) => void) | undefined;
  /** Default: `Date.now()`. */
  readonly now?: number | undefined;
  /** Objects per listing page; default the server's (1000 on GCS). */
  readonly pageSize?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Splits `gs://BUCKET[/PREFIX]`; no PREFIX (or an empty one) means {@link DEFAULT_PART_PREFIX}. The prefix is
 * taken verbatim, as object names are.
 */
export function parseGsPrefix(text: string): GsPrefix {
  const rest = text.startsWith('gs://') ? text.slice('gs://'.length) : undefined;
  const slash = rest?.indexOf('/') ?? -1;
  const bucket = rest === undefined ? '' : slash < 0 ? rest : rest.slice(0, slash);
  if (rest === undefined || bucket === '')
    throw new UsageError(`${JSON.stringify(text)} is not a location: use gs://BUCKET or gs://BUCKET/PREFIX`);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  return { bucket, prefix: prefix === '' ? DEFAULT_PART_PREFIX : prefix };
}

const AGE_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--older-than`: `0`, `90s`, `30m`, `12h`, `7d` (ms, s, m, h, d) into milliseconds. */
export function parseAge(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  const value = Number(match?.[1]);
  const unit = match?.[2];
  // A bare number only as 0: "12" could mean seconds or hours.
  const ms = unit === undefined ? (value === 0 ? 0 : Number.NaN) : Math.round(value * (AGE_UNITS[unit.toLowerCase()] ?? Number.NaN));
  if (!Number.isSafeInteger(ms) || ms < 0) throw new UsageError(`${JSON.stringify(text)} is not an age: use e.g. 0, 30m, 12h or 7d`);
  return ms;
}

/**
 * Lists the objects under `prefix` created more than `olderThanMs` ago and deletes each (its listed generation),
 * a few at a time. A listing failure is thrown; a delete failure is reported and the rest go on.
 */
export async function cleanupParts(request: CleanupRequest): Promise<CleanupReport> {
  const { api, bucket, prefix, olderThanMs } = request;
  const cutoff = (request.now ?? Date.now()) - olderThanMs;
  const deleted: ListedObject[] = [];
  const failed: { object: ListedObject; error: unknown }[] = [];
  let kept = 0;
  const deleteOne = async (object: ListedObject): Promise<void> => {
    try {
      if (request.dryRun !== true)
        await api.deleteObject({ bucket, name: object.name, generation: object.generation || undefined, signal: request.signal });
      deleted.push(object);
      request.onDeleted?.(object);
    } catch (error) {
      if (request.signal?.aborted === true) throw error;
      failed.push({ object, error });
      request.onFailed?.(object, error);
    }
  };
  for await (const page of api.listObjects({ bucket, prefix, maxResults: request.pageSize, signal: request.signal })) {
    const due = page.items.filter((object) => {
      const created = Date.parse(object.timeCreated);
      // An object without a readable creation time is not known to be old: left alone.
      const old = Number.isFinite(created) && created <= cutoff;
      if (!old) kept += 1;
      return old;
    });
    for (let i = 0; i < due.length; i += CONCURRENT_DELETES) {
      await Promise.all(due.slice(i, i + CONCURRENT_DELETES).map(deleteOne));
    }
  }
  return { deleted, failed, kept };
}

/** What became of a `cleanup` command. */
export type CleanupOutcome =
  | { readonly kind: 'done'; readonly report: CleanupReport }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'interrupted'; readonly signal: 'SIGINT' | 'SIGTERM' };

/** `gcs-stream cleanup` itself: prints as it goes and returns what happened. */
export async function cleanup(location: GsPrefix, flags: CleanupFlags): Promise<CleanupOutcome> {
  const endpoint = resolveEndpoint(flags.endpoint);
  const controller = new AbortController();
  const api = new ObjectApi({
    client: clientFor({ authClient: undefined, isEmulator: isEmulatorEndpoint(flags.endpoint, endpoint) }),
    apiEndpoint: endpoint,
    userProject: flags.userProject,
    retry: DEFAULT_RETRY,
    onRetry: ({ attempt, delayMs, error }: RetryEvent) =>
      process.stderr.write(`gcs-stream: ${oneLine(error.message)}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s\n`),
  });
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    interrupted ??= signal;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const verb = flags.dryRun === true ? 'would delete' : 'deleted';
  try {
    const report = await cleanupParts({
      api,
      ...location,
      olderThanMs: flags.olderThan ?? DEFAULT_CLEANUP_AGE_MS,
      dryRun: flags.dryRun,
      signal: controller.signal,
      onDeleted: (object) =>
        process.stdout.write(`${verb} gs://${location.bucket}/${object.name} (${object.size} bytes, created ${object.timeCreated})\n`),
      onFailed: (object, error) =>
        process.stderr.write(
          `gcs-stream: could not delete gs://${location.bucket}/${object.name}: ${oneLine(error instanceof Error ? error.message : String(error))}\n`,
        ),
    });
    const summary =
      `gcs-stream: ${report.deleted.length} ${flags.dryRun === true ? 'to delete' : 'deleted'}, ${report.failed.length} could not be deleted, ` +
      `${report.kept} newer kept under gs://${location.bucket}/${location.prefix}\n`;
    process.stderr.write(summary);
    return { kind: 'done', report };
  } catch (error) {
    if (interrupted !== undefined) return { kind: 'interrupted', signal: interrupted };
    return { kind: 'failed', error };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Adds the `cleanup` command to `program`; `report(exitCode)` is called when it ends (0: all deleted; 1: some could
 * not be, or the listing failed; 130 / 143: interrupted). Usage errors throw `UsageError`.
 */
export function addCleanupCommand(program: Command, report: (exitCode: number) => void, printError: (error: unknown) => void): void {
  program
    .command('cleanup')
    .description(
      `Delete the temporary part objects of parallel uploads under gs://BUCKET/PREFIX (default PREFIX ${DEFAULT_PART_PREFIX}) that are older than --older-than.`,
    )
    .argument('<location>', 'gs://BUCKET or gs://BUCKET/PREFIX')
    .option('--older-than <age>', 'only objects created more than this long ago: 0, 30m, 12h, 7d (default 24h)', (text: string) =>
      parseAge(text),
    )
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .option('--endpoint <url>', 'JSON API endpoint (default $STORAGE_EMULATOR_HOST, else https://storage.googleapis.com)')
    .option('--user-project <project>', 'project billed for a requester-pays bucket')
    .action(async (location: string, flags: CleanupFlags) => {
      const outcome = await cleanup(parseGsPrefix(location), flags);
      if (outcome.kind === 'interrupted') return report(outcome.signal === 'SIGINT' ? 130 : 143);
      if (outcome.kind === 'failed') {
        printError(outcome.error);
        return report(1);
      }
      report(outcome.report.failed.length === 0 ? 0 : 1);
    });
}
