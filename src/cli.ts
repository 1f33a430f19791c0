/**
 * `gcs-stream`: the library on the command line. `gcs-stream cp SOURCE gs://BUCKET/OBJECT` parses its flags into
 * library options and runs `pipeline(source, createGcsWriteStream(options))`; everything about the upload itself
 * (chunking, retries, checksums, cancelling on failure) is the library's.
 *
 * `gcs-stream cat [--follow] gs://BUCKET/OBJECT` prints an object, and with `--follow` keeps printing an appendable
 * object as it grows, until it is finalized, retrying transient failures as uploads do (exit 0; 1 when it does not
 * exist, disappears or cannot be read; 130 / 143 on a signal).
 *
 * `gcs-stream cleanup gs://BUCKET[/PREFIX]` deletes temporary part objects left by parallel uploads (cli/cleanup.ts).
 *
 * Exit codes: 0 uploaded (and the --checkpoint file removed); 1 the upload failed; 2 usage error (bad arguments or option values, nothing uploaded);
 * 130 / 143 interrupted by SIGINT / SIGTERM (the session was cancelled, no object was created).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, InvalidArgumentError as OptionValueError, Option } from 'commander';
import { appendCp, checkResumableFlags, type AppendCpFlags } from './cli/append-cp.js';
import { cat, type CatFlags } from './cli/cat.js';
import { addCleanupCommand } from './cli/cleanup.js';
import { checkCheckpointTarget, readCheckpointFile, removeCheckpointFile, writeCheckpointFile } from './cli/checkpoint-file.js';
import { parseGsUrl } from './cli/gs-url.js';
import { parseDuration, parseSize } from './cli/parse-size.js';
import { createProgressReporter, formatBytes, formatDuration, rateOf } from './cli/progress.js';
import { checkSourceStart, defaultSourceStart, holdEnd, openSource, planSource } from './cli/source.js';
import {
  buildUploadOptions,
  collectMetadata,
  defaultMaxUncommittedMs,
  parseCount,
  SOURCE_OFFSETS,
  VALIDATIONS,
} from './cli/upload-options.js';
import { UsageError } from './cli/usage-error.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_SIGNAL: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/** Adapts a parser that throws `UsageError` to commander, which then names the option in its message. */
function optionParser<T, P = T>(parse: (value: string, previous: P) => T): (value: string, previous: P) => T {
  return (value, previous) => {
    try {
      return parse(value, previous);
    } catch (error) {
      throw new OptionValueError((error as Error).message);
    }
  };
}

/** `--interval`: a duration, never `off` (a follow that never polls would never end). */
function parseInterval(text: string): number {
  const ms = parseDuration(text);
  if (!Number.isFinite(ms)) throw new UsageError(`${JSON.stringify(text)} is not an interval: use e.g. 200ms, 1s or 1m`);
  return ms;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The error's stable code: the library's `ERR_GCS_UPLOAD_*`, a Node.js code (`EIO`), or its class name. */
function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'ERR_UNKNOWN';
}

function printError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`gcs-stream: error: ${oneLine(message)} (${codeOf(error)})\n`);
}

function exitCodeOf(error: unknown): number {
  // The library's InvalidArgumentError is a usage error too: an option value it refused before any request.
  return error instanceof UsageError || codeOf(error) === 'ERR_GCS_UPLOAD_INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}

function packageVersion(): string {
  try {
    // src/cli.ts and dist/cli.js both sit one level below the package root.
    const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** `gcs-stream cp`: checks everything it can, then uploads; resolves with the exit code. */
async function cp(sourceArg: string, destinationArg: string, flags: AppendCpFlags): Promise<number> {
  // Every check that can fail on a user's mistake comes before the stream exists: creating it opens (or, with
  // --resume, continues) a session, and failing after that would cancel the session.
  const destination = parseGsUrl(destinationArg);
  if (flags.appendable === true) {
    const result = await appendCp(destination, flags, planSource(sourceArg));
    if (result.kind === 'done') return EXIT_OK;
    if (result.kind === 'interrupted') return EXIT_SIGNAL[result.signal];
    printError(result.error);
    return exitCodeOf(result.error);
  }
  checkResumableFlags(flags);
  if (flags.sourceOffset !== undefined && flags.resume === undefined) {
    throw new UsageError('--source-offset only applies with --resume');
  }
  const plan = planSource(sourceArg);
  const checkpoint = flags.resume === undefined ? undefined : readCheckpointFile(flags.resume);
  const sourceStart = flags.sourceOffset ?? defaultSourceStart(plan);
  const resumedAt = typeof checkpoint?.bytesCommitted === 'number' ? checkpoint.bytesCommitted : 0;
  const readFrom = checkpoint !== undefined && sourceStart === 'checkpoint' ? resumedAt : 0;
  checkSourceStart(plan, readFrom);
  if (flags.checkpoint !== undefined) checkCheckpointTarget(flags.checkpoint);

  // Loaded only now: --help, --version and usage errors answer without loading the library and its HTTP stack.
  const { createGcsWriteStream } = await import('./index.js');
  const upload = createGcsWriteStream(
    buildUploadOptions(
      destination,
      { ...flags, maxUncommittedMs: flags.maxUncommitted ?? defaultMaxUncommittedMs(plan) },
      checkpoint === undefined ? undefined : { checkpoint, sourceStart },
      plan.size,
    ),
  );
  const reporter = createProgressReporter({
    stream: process.stderr,
    mode: flags.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'lines',
    totalBytes: plan.size,
    bytesAtStart: resumedAt,
    bytesAccepted: () => upload.bytesAccepted,
  });
  upload.on('progress', ({ bytesCommitted, bytesAccepted }) => reporter.update(bytesCommitted, bytesAccepted));
  upload.on('retry', ({ attempt, delayMs, error }) =>
    reporter.retried(`gcs-stream: ${oneLine(error.message)} (${error.code}); retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s`),
  );
  upload.on('warning', (warning) => process.stderr.write(`gcs-stream: warning: ${warning.message}: ${warning.leftovers.join(' ')}\n`));
  let checkpointError: Error | undefined;
  const checkpointFile = flags.checkpoint;
  if (checkpointFile !== undefined) {
    upload.on('checkpoint', (value) => {
      try {
        writeCheckpointFile(checkpointFile, value);
      } catch (error) {
        // Checkpoints were asked for: going on without them would leave the user unable to resume.
        checkpointError ??= new Error(`cannot write the checkpoint file ${checkpointFile}: ${codeOf(error)}`);
        upload.destroy(checkpointError);
      }
    });
  }

  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  let finalizing = false;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (interrupted !== undefined) process.exit(EXIT_SIGNAL[signal]); // a second signal: leave at once
    interrupted = signal;
    finalizing = upload.writableEnded; // the final request may already be on its way
    reporter.stop();
    if (!flags.quiet) process.stderr.write(`gcs-stream: ${signal}: cancelling the upload (repeat to exit at once)\n`);
    // Destroying the stream makes the library cancel the session: no object is created.
    upload.destroy();
  };
  const stopListening = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let failure: unknown;
  try {
    const source = openSource(plan, readFrom);
    await (plan.size === undefined ? pipeline(source, holdEnd(), upload) : pipeline(source, upload));
  } catch (error) {
    failure = error;
  }
  // pipeline() also resolves when the upload is destroyed after its input ended (Node.js counts an ended,
  // flushed writable as done): only the object resource says that the upload succeeded.
  if (failure !== undefined || upload.object === undefined) {
    // Let the library finish cancelling the session before the process goes (a second signal still exits).
    if (!upload.closed) await once(upload, 'close');
    stopListening();
    reporter.stop();
    if (interrupted !== undefined) {
      if (!flags.quiet) {
        process.stderr.write(
          finalizing
            ? 'gcs-stream: interrupted while the upload was being finalized; the object may or may not exist\n'
            : 'gcs-stream: interrupted; the upload was cancelled and no object was created\n',
        );
      }
      return EXIT_SIGNAL[interrupted];
    }
    failure = checkpointError ?? failure ?? new Error('the upload stopped before GCS confirmed the object');
    printError(failure);
    return exitCodeOf(failure);
  }
  stopListening();
  if (checkpointFile !== undefined) {
    // The session is finished: a checkpoint left behind would send the next `--resume` back to it.
    const failed = removeCheckpointFile(checkpointFile);
    if (failed !== undefined)
      process.stderr.write(
        `gcs-stream: warning: cannot remove the checkpoint file ${checkpointFile} (${failed}); it records a finished upload\n`,
      );
  }

  const object = upload.object;
  const progress = reporter.snapshot();
  const seconds = progress.elapsedMs / 1000;
  reporter.stop(
    `gcs-stream: uploaded ${formatBytes(Number(object.size))} to gs://${object.bucket}/${object.name} in ` +
      `${formatDuration(seconds)} (${formatBytes(rateOf(progress))}/s), ${progress.retries} ` +
      `${progress.retries === 1 ? 'retry' : 'retries'}, generation ${object.generation ?? '?'}`,
  );
  if (flags.json) {
    const summary = {
      bucket: object.bucket,
      name: object.name,
      size: Number(object.size),
      generation: object.generation ?? null,
      crc32c: object.crc32c ?? null,
      md5Hash: object.md5Hash ?? null,
      seconds: Math.round(seconds * 1000) / 1000,
      retries: progress.retries,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  }
  return EXIT_OK;
}

/** `gcs-stream cat`: prints the object (following it with `--follow`); resolves with the exit code. */
async function catCommand(sourceArg: string, flags: CatFlags): Promise<number> {
  const result = await cat(parseGsUrl(sourceArg), flags);
  if (result.kind === 'done') return EXIT_OK;
  if (result.kind === 'interrupted') return EXIT_SIGNAL[result.signal];
  printError(result.error);
  return exitCodeOf(result.error);
}

/** Runs the command line `argv` (as in `process.argv`); resolves with the exit code. */
async function main(argv: readonly string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command('gcs-stream')
    .description('Stream data into Google Cloud Storage through resumable uploads.')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');

  program
    .command('cp')
    .description('Upload SOURCE (a file, or - for stdin) to gs://BUCKET/OBJECT.')
    .argument('<source>', 'a file path, or - for standard input')
    .argument('<destination>', 'gs://BUCKET/OBJECT')
    .option('--chunk-size <size>', 'bytes per request, a multiple of 256KiB: 16MiB, 256K, 262144 (default 8MiB)', optionParser(parseSize))
    .option(
      '--parallel <n>',
      'upload N parts at once as temporary objects and compose them at the end (default 1: one session)',
      optionParser(parseCount),
    )
    .option('--part-size <size>', 'with --parallel: bytes per part, a multiple of 256KiB (default 32MiB)', optionParser(parseSize))
    .option('--buffer-chunks <n>', 'per-stream memory cap in chunks: memory <= chunk size x n (default 16)', optionParser(parseCount))
    .option(
      '--max-uncommitted <duration>',
      'commit every full 256 KiB block once bytes have waited this long: 500ms, 10s, 2m, or off (default 2s for stdin, 10s for a file)',
      optionParser(parseDuration),
    )
    .option('--content-type <type>', 'MIME type of the object (default application/octet-stream)')
    .option('--metadata <key=value>', 'custom metadata; repeat for more keys', optionParser(collectMetadata))
    .option('--cache-control <value>', 'Cache-Control of the object')
    .option('--content-encoding <value>', 'Content-Encoding of the object (e.g. gzip)')
    .option('--content-disposition <value>', 'Content-Disposition of the object')
    .option('--if-generation-match <generation>', 'write only if the live generation is this one; 0: only if absent')
    .option('--endpoint <url>', 'JSON API endpoint (default $STORAGE_EMULATOR_HOST, else https://storage.googleapis.com)')
    .addOption(new Option('--validation <kind>', 'whole-object checksums checked by GCS (default crc32c)').choices(VALIDATIONS))
    .option('--user-project <project>', 'project billed for a requester-pays bucket')
    .option('--checkpoint <file>', 'after every commit, write a checkpoint to FILE (atomically) for --resume')
    .option('--resume <file>', 'continue the upload recorded in a checkpoint FILE')
    .addOption(
      new Option(
        '--source-offset <where>',
        'with --resume: where SOURCE starts (default: beginning for a file, checkpoint for stdin)',
      ).choices(SOURCE_OFFSETS),
    )
    .option('--appendable', 'write an appendable object over gRPC (zonal buckets): readers see every persisted byte at once')
    .option('--no-finalize', 'with --appendable: leave the object appendable at the end instead of finalizing it')
    .option('--grpc-endpoint <host:port>', 'with --appendable: gRPC endpoint (default $STORAGE_EMULATOR_HOST_GRPC, else Google)')
    .option('--json', 'print a JSON summary on stdout')
    .option('-q, --quiet', 'no progress on stderr (errors are still printed)')
    .action(async (source: string, destination: string, flags: AppendCpFlags) => {
      exitCode = await cp(source, destination, flags);
    });

  program
    .command('cat')
    .description('Print gs://BUCKET/OBJECT on stdout; with --follow, keep printing as it grows until it is finalized.')
    .argument('<object>', 'gs://BUCKET/OBJECT')
    .option('-f, --follow', 'keep printing new bytes of an appendable object until it is finalized (like tail -f)')
    .option(
      '--interval <duration>',
      'with --follow: how often to check for new bytes: 200ms, 1s, 1m (default 1s)',
      optionParser(parseInterval),
    )
    .option('--endpoint <url>', 'JSON API endpoint (default $STORAGE_EMULATOR_HOST, else https://storage.googleapis.com)')
    .option('--user-project <project>', 'project billed for a requester-pays bucket')
    .action(async (object: string, flags: CatFlags) => {
      exitCode = await catCommand(object, flags);
    });

  addCleanupCommand(program, (code) => (exitCode = code), printError);

  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    // commander already printed its own messages (usage errors, --help, --version).
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    printError(error);
    return exitCodeOf(error);
  }
  return exitCode;
}

process.exitCode = await main(process.argv);
// Whatever might still hold the event loop (a half-read stdin, a lingering socket) must not keep a finished
// command alive; the timer itself does not.
setTimeout(() => process.exit(), 2_000).unref();
