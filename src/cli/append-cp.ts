/**
 * `gcs-stream cp SOURCE gs://BUCKET/OBJECT --appendable`: the source (typically `-`, a running program's output)
 * goes into `createGcsAppendStream`, so that readers see every persisted byte while it is written. `--no-finalize`
 * leaves the object appendable; `--grpc-endpoint host:port` picks the gRPC endpoint (default
 * `STORAGE_EMULATOR_HOST_GRPC`, else Google's). The write itself is the library's; this file only maps flags and
 * reports.
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { GcsAppendStreamOptions } from '../append/append-options.js';
import type { RetryEvent } from '../core/retry.js';
import type { GsLocation } from './gs-url.js';
import { createProgressReporter, formatBytes, formatDuration, rateOf } from './progress.js';
import { cliText } from './report-error.js';
import { defaultMaxUncommittedMs, type CpFlags } from './upload-options.js';
import { openSource, type SourcePlan } from './source.js';
import { UsageError } from './usage-error.js';

/** The flags `cp --appendable` adds to those of `cp`. */
export interface AppendCpFlags extends CpFlags {
  appendable?: boolean;
  /** False with `--no-finalize`. */
  finalize?: boolean;
  grpcEndpoint?: string;
}

/** Flags of the resumable upload that have no meaning for an appendable write: refused rather than ignored. */
const RESUMABLE_ONLY: readonly [keyof CpFlags, string][] = [
  ['chunkSize', '--chunk-size'],
  ['bufferChunks', '--buffer-chunks'],
  ['cacheControl', '--cache-control'],
  ['contentEncoding', '--content-encoding'],
  ['contentDisposition', '--content-disposition'],
  ['validation', '--validation'],
  ['checkpoint', '--checkpoint'],
  ['resume', '--resume'],
  ['sourceOffset', '--source-offset'],
];

/** Checks the flags of `cp` without `--appendable`: the appendable-only ones are usage errors there. */
export function checkResumableFlags(flags: AppendCpFlags): void {
  if (flags.finalize === false) throw new UsageError('--no-finalize only applies with --appendable');
  if (flags.grpcEndpoint !== undefined) throw new UsageError('--grpc-endpoint only applies with --appendable');
}

/** The library options of an appendable write from the flags; throws `UsageError` on a flag it cannot honour. */
export function buildAppendOptions(destination: GsLocation, flags: AppendCpFlags, plan: SourcePlan): GcsAppendStreamOptions {
  if (flags.endpoint !== undefined) {
    // The JSON API endpoint is the wrong one here: say which flag sets the endpoint this write uses.
    throw new UsageError(
      '--endpoint (the JSON API endpoint) does not apply with --appendable: give the gRPC endpoint with ' +
        '--grpc-endpoint HOST:PORT (or set STORAGE_EMULATOR_HOST_GRPC)',
    );
  }
  for (const [key, flag] of RESUMABLE_ONLY) {
    if (flags[key] !== undefined) throw new UsageError(`${flag} does not apply with --appendable`);
  }
  const maxUncommittedMs = flags.maxUncommitted ?? defaultMaxUncommittedMs(plan);
  return {
    bucket: destination.bucket,
    name: destination.name,
    finalize: flags.finalize ?? true,
    ...(flags.grpcEndpoint === undefined ? {} : { grpcEndpoint: flags.grpcEndpoint }),
    ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }),
    ...(flags.metadata === undefined ? {} : { metadata: flags.metadata }),
    ...(flags.ifGenerationMatch === undefined ? {} : { ifGenerationMatch: flags.ifGenerationMatch }),
    ...(maxUncommittedMs === undefined ? {} : { maxUncommittedMs }),
    ...(flags.userProject === undefined ? {} : { requestHeaders: { 'x-goog-user-project': flags.userProject } }),
  };
}

/** What became of an appendable `cp`. */
export type AppendCpResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'interrupted'; readonly signal: 'SIGINT' | 'SIGTERM' };

/** Writes `plan`'s source into an appendable object; reports on stderr (and `--json` on stdout). */
export async function appendCp(destination: GsLocation, flags: AppendCpFlags, plan: SourcePlan): Promise<AppendCpResult> {
  const options = buildAppendOptions(destination, flags, plan);
  // Loaded only now: usage errors answer without loading the library (and, here, the gRPC stack).
  const { createGcsAppendStream } = await import('../index.js');
  const stream = createGcsAppendStream(options);
  let bytesAccepted = 0;
  let generation: string | undefined;
  const reporter = createProgressReporter({
    stream: process.stderr,
    mode: flags.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'lines',
    totalBytes: plan.size,
    bytesAtStart: 0,
    bytesAccepted: () => bytesAccepted,
  });
  stream.on('generation', (value: string) => (generation = value));
  stream.on('progress', (progress: { bytesAccepted: number; bytesCommitted: number }) => {
    bytesAccepted = progress.bytesAccepted;
    reporter.update(progress.bytesCommitted, progress.bytesAccepted);
  });
  stream.on('retry', ({ attempt, delayMs, error }: RetryEvent) =>
    reporter.retried(`gcs-stream: ${cliText(error.message)} (${error.code}); retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s`),
  );

  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (interrupted !== undefined) process.exit(signal === 'SIGINT' ? 130 : 143);
    interrupted = signal;
    reporter.stop();
    // Nothing is finalized: the persisted bytes stay readable in the unfinalized object.
    stream.destroy();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let failure: unknown;
  try {
    await pipeline(openSource(plan), stream);
  } catch (error) {
    failure = error;
  }
  if (!stream.closed) await once(stream, 'close');
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const target = `gs://${destination.bucket}/${destination.name}`;
  if (interrupted !== undefined) {
    reporter.stop();
    if (!flags.quiet) {
      process.stderr.write(
        `gcs-stream: ${interrupted}: stopped; ${target} is left unfinalized with the ${stream.bytesCommitted} bytes persisted\n`,
      );
    }
    return { kind: 'interrupted', signal: interrupted };
  }
  const finalized = stream.object !== undefined;
  if (failure !== undefined || (options.finalize !== false && !finalized) || stream.errored) {
    reporter.stop();
    return { kind: 'failed', error: failure ?? stream.errored ?? new Error('the write stopped before the object was finalized') };
  }
  const size = stream.object?.size ?? stream.bytesCommitted;
  const progress = reporter.snapshot();
  const seconds = progress.elapsedMs / 1000;
  reporter.stop(
    `gcs-stream: appended ${formatBytes(size)} to ${target} in ${formatDuration(seconds)} (${formatBytes(rateOf(progress))}/s), ` +
      `${progress.retries} ${progress.retries === 1 ? 'retry' : 'retries'}, generation ${generation ?? '?'}, ` +
      (finalized ? 'finalized' : 'left appendable'),
  );
  if (flags.json) {
    const summary = {
      bucket: destination.bucket,
      name: destination.name,
      size,
      generation: stream.object?.generation ?? generation ?? null,
      crc32c: stream.object?.crc32c ?? null,
      finalized,
      seconds: Math.round(seconds * 1000) / 1000,
      retries: progress.retries,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  }
  return { kind: 'done' };
}
