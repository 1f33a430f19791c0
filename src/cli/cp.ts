/**
 * `gcs-stream cp SOURCE gs://BUCKET/OBJECT`: parses nothing itself (cli.ts does), checks what it can before any
 * session exists, then runs `pipeline(source, createGcsWriteStream(options))` (or, with `--appendable`,
 * append-cp.ts). Everything about the upload itself (chunking, retries, checksums, cancelling on failure) is the
 * library's; this file reports, keeps the checkpoint file, and handles interrupts:
 *
 * - without `--checkpoint`, SIGINT / SIGTERM destroy the stream: the library cancels the session, no object appears;
 * - with `--checkpoint`, once a checkpoint exists, they stop the input and commit what can be committed (every full
 *   256 KiB block read so far), leave the session open and print the command that resumes it. The stream is never
 *   destroyed there, since destroying it cancels the session: the process exits with it still open, as a crash would.
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { UploadCheckpoint } from '../core/checkpoint.js';
import type { ParallelCheckpoint } from '../parallel/parallel-checkpoint.js';
import { appendCp, checkResumableFlags, type AppendCpFlags } from './append-cp.js';
import { checkCheckpointTarget, readCheckpointFile, removeCheckpointFile, writeCheckpointFile } from './checkpoint-file.js';
import { EXIT_OK, EXIT_SIGNAL, type InterruptSignal } from './exit-codes.js';
import { parseGsUrl, type GsLocation } from './gs-url.js';
import { createProgressReporter, formatBytes, formatDuration, rateOf } from './progress.js';
import { cliText, codeOf, describeError, exitCodeOf, printError } from './report-error.js';
import { checkSourceStart, defaultSourceStart, InputGate, openSource, planSource, STREAM_END_HOLD_MS } from './source.js';
import { buildUploadOptions, defaultMaxUncommittedMs } from './upload-options.js';
import { UsageError } from './usage-error.js';

/** Quotes `arg` for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * The command that resumes the upload `args` (cp's arguments as given) left in `checkpointFile`: the same command,
 * with `--resume FILE` instead of any it had.
 */
export function resumeCommand(args: readonly string[], checkpointFile: string): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--resume') i += 1;
    else if (!arg.startsWith('--resume=')) kept.push(arg);
  }
  return ['gcs-stream', ...kept, '--resume', checkpointFile].map(shellQuote).join(' ');
}

/** `gcs-stream cp`: checks everything it can, then uploads; resolves with the exit code. `args`: cp's own argv. */
export async function cp(sourceArg: string, destinationArg: string, flags: AppendCpFlags, args: readonly string[]): Promise<number> {
  // Every check that can fail on a user's mistake comes before the stream exists: creating it opens (or, with
  // --resume, continues) a session, and failing after that would cancel the session.
  const destination = parseGsUrl(destinationArg, 'destination');
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
  return resumableCp(destination, planSource(sourceArg), flags, args);
}

async function resumableCp(
  destination: GsLocation,
  plan: ReturnType<typeof planSource>,
  flags: AppendCpFlags,
  args: readonly string[],
): Promise<number> {
  const checkpoint = flags.resume === undefined ? undefined : readCheckpointFile(flags.resume);
  const sourceStart = flags.sourceOffset ?? defaultSourceStart(plan);
  const resumedAt = typeof checkpoint?.bytesCommitted === 'number' ? checkpoint.bytesCommitted : 0;
  const readFrom = checkpoint !== undefined && sourceStart === 'checkpoint' ? resumedAt : 0;
  checkSourceStart(plan, readFrom);
  if (flags.checkpoint !== undefined) checkCheckpointTarget(flags.checkpoint);

  // Loaded only now: --help, --version and usage errors answer without loading the library and its HTTP stack.
  const { createGcsWriteStream } = await import('../index.js');
  const upload = createGcsWriteStream(
    buildUploadOptions(
      destination,
      { ...flags, maxUncommittedMs: flags.maxUncommitted ?? defaultMaxUncommittedMs(plan) },
      checkpoint === undefined ? undefined : { checkpoint, sourceStart },
      plan.size,
    ),
  );
  const target = `gs://${destination.bucket}/${destination.name}`;
  const say = (line: string): void => {
    if (!flags.quiet) process.stderr.write(`gcs-stream: ${line}\n`);
  };
  const reporter = createProgressReporter({
    stream: process.stderr,
    mode: flags.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'lines',
    totalBytes: plan.size,
    bytesAtStart: resumedAt,
    bytesAccepted: () => upload.bytesAccepted,
  });
  upload.on('progress', ({ bytesCommitted, bytesAccepted }) => reporter.update(bytesCommitted, bytesAccepted));
  upload.on('retry', ({ attempt, delayMs, error }) =>
    reporter.retried(`gcs-stream: ${cliText(error.message)} (${error.code}); retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s`),
  );
  upload.on('warning', (warning) =>
    process.stderr.write(`gcs-stream: warning: ${cliText(warning.message)}: ${warning.leftovers.join(' ')}\n`),
  );
  let checkpointError: Error | undefined;
  const checkpointFile = flags.checkpoint;
  // The state an interrupt leaves the session in. A resumed session has one from the start (the stream reports
  // none until its first commit): interrupting it before then must not cancel what --resume brought back.
  let lastCheckpoint: UploadCheckpoint | ParallelCheckpoint | undefined = checkpointFile === undefined ? undefined : checkpoint;
  if (checkpointFile !== undefined) {
    upload.on('checkpoint', (value) => {
      try {
        writeCheckpointFile(checkpointFile, value);
        lastCheckpoint = value;
      } catch (error) {
        // Checkpoints were asked for: going on without them would leave the user unable to resume.
        checkpointError ??= new Error(`cannot write the checkpoint file ${checkpointFile}: ${codeOf(error)}`);
        upload.destroy(checkpointError);
      }
    });
  }

  // The command that resumes this upload, and how its input must start.
  const resumeHint = (file: string, committed: number): string => {
    const command = resumeCommand(args, file);
    // A regular file is read again from its start and checked against the checkpoint; a stream (stdin, a FIFO)
    // cannot be, and continues where the session stopped.
    if (plan.size !== undefined) return `resume with: ${command}`;
    return `resume with the input from byte ${committed} on (the session holds the bytes before it): ... | ${command}`;
  };

  const gate = new InputGate(plan.size === undefined ? STREAM_END_HOLD_MS : 0);
  let interrupted: InterruptSignal | undefined;
  let inputEnded = false; // when interrupted: whether the upload had all of its input (it may be finalizing)
  let resolveSuspend: (() => void) | undefined;
  const suspended = new Promise<void>((resolve) => (resolveSuspend = resolve));
  let settled = false; // the outcome is known and being reported: a signal now only makes the exit immediate
  const onSignal = (signal: InterruptSignal): void => {
    if (settled) process.exit(EXIT_SIGNAL[signal]);
    if (interrupted !== undefined) {
      // A second signal: leave at once. With checkpoints the session stays open and the file holds its last commit.
      if (lastCheckpoint !== undefined && checkpointFile !== undefined && upload.object === undefined) {
        process.stderr.write(
          `gcs-stream: ${signal}: exiting at once; the session stays open; ${resumeHint(checkpointFile, lastCheckpoint.bytesCommitted)}\n`,
        );
      }
      process.exit(EXIT_SIGNAL[signal]);
    }
    interrupted = signal;
    reporter.stop();
    if (checkpointFile !== undefined && lastCheckpoint !== undefined) {
      gate.close();
      // Printed with --quiet too, as the resume command that follows: the session is being kept for the user.
      process.stderr.write(
        `gcs-stream: ${signal}: stopping; committing what was read so far and keeping the session for --resume (repeat to exit at once)\n`,
      );
      resolveSuspend?.();
      return;
    }
    inputEnded = upload.writableEnded;
    say(`${signal}: cancelling the upload (repeat to exit at once)`);
    // Destroying the stream makes the library cancel the session: no object is created.
    upload.destroy();
  };
  // The outcome is known: the handlers stay installed until the process exits (removed, a signal in the last
  // moments would kill the process by default action, with no exit code) but only make the exit immediate.
  const settle = (): void => {
    settled = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let failure: unknown;
  const source = openSource(plan, readFrom);
  const finished = pipeline(source, gate, upload).then(
    () => 'finished' as const,
    (error: unknown) => {
      failure = error;
      return 'failed' as const;
    },
  );
  const how = await Promise.race([finished, suspended.then(() => 'suspended' as const)]);
  if (how === 'suspended') return suspend(interrupted!);

  // pipeline() also resolves when the upload is destroyed after its input ended (Node.js counts an ended,
  // flushed writable as done): only the object resource says that the upload succeeded.
  if (failure !== undefined || upload.object === undefined) {
    // Let the library finish cancelling the session before the process goes (a second signal still exits).
    if (!upload.closed) await once(upload, 'close');
    settle();
    reporter.stop();
    if (interrupted !== undefined) {
      if (upload.object !== undefined) {
        // The final request had been answered before the interrupt took effect: the object exists, whole.
        say(`${interrupted} came too late: the upload had completed; ${target} is generation ${upload.object.generation ?? '?'}`);
        removeCheckpoints(flags);
        return EXIT_OK;
      }
      if (upload.uploadUri === undefined)
        say('interrupted before the upload session was open: nothing was uploaded, no object was created');
      // After its input ended the stream reports the interrupt as an error whose words say what became of the
      // session (cancelled, or a final request whose outcome could not be learnt).
      else if (inputEnded && isUploadError(failure)) say(`interrupted while the last bytes were being sent: ${describeError(failure)[0]}`);
      else say('interrupted; the upload was cancelled and no object was created');
      return EXIT_SIGNAL[interrupted];
    }
    failure = checkpointError ?? failure ?? new Error('the upload stopped before GCS confirmed the object');
    printError(failure);
    return exitCodeOf(failure);
  }
  settle();
  removeCheckpoints(flags);

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

  /**
   * Interrupted with checkpoints: the gate is closed, so the upload gets neither more bytes nor an end. Commit the
   * full blocks it holds (unless its input had already ended: then it is sending everything anyway), then leave
   * with the session open. Never returns: the process exits here, without destroying the stream.
   */
  async function suspend(signal: InterruptSignal): Promise<never> {
    if (!upload.writableEnded) {
      try {
        // Resolves once GCS confirmed it and the checkpoint event (hence the file) has recorded it.
        await upload.flush();
      } catch {
        // Reported below from the stream's error.
      }
    }
    settle();
    if (upload.object !== undefined) {
      say(`${signal} came too late: the upload had completed; ${target} is generation ${upload.object.generation ?? '?'}`);
      removeCheckpoints(flags);
      process.exit(EXIT_OK);
    }
    const error = checkpointError ?? upload.errored ?? undefined;
    if (error !== undefined) {
      printError(error);
      say(`${signal}: the upload failed while stopping; it cannot be resumed`);
      process.exit(EXIT_SIGNAL[signal]);
    }
    const saved = lastCheckpoint!;
    try {
      // Written again (atomically, the same state or the resumed one): the file holds what the session was left at.
      writeCheckpointFile(checkpointFile!, saved);
    } catch (error) {
      process.stderr.write(`gcs-stream: warning: cannot write the checkpoint file ${checkpointFile!} (${codeOf(error)})\n`);
    }
    const still = upload.writableEnded
      ? '; its input had ended, so a request in flight may still complete the object (resuming then confirms it)'
      : '';
    // Printed with --quiet too: without it the session left open is of no use.
    process.stderr.write(
      `gcs-stream: ${signal}: stopped with ${saved.bytesCommitted} bytes committed to ${target}; the session stays open${still}\n` +
        `gcs-stream: ${resumeHint(checkpointFile!, saved.bytesCommitted)}\n`,
    );
    process.exit(EXIT_SIGNAL[signal]);
  }
}

/** Whether `error` is one of the library's (whose message ends with what became of the session). */
function isUploadError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && /^ERR_GCS_UPLOAD_/.test(codeOf(error));
}

/** After success: the checkpoint files name a finished session, and a `--resume` of them must not go back to it. */
function removeCheckpoints(flags: AppendCpFlags): void {
  const files = new Set([flags.checkpoint, flags.resume].filter((file): file is string => file !== undefined));
  for (const file of files) {
    const failed = removeCheckpointFile(file);
    if (failed !== undefined) {
      process.stderr.write(`gcs-stream: warning: cannot remove the checkpoint file ${file} (${failed}); it records a finished upload\n`);
    }
  }
}
