/**
 * `gcs-stream`: the library on the command line. This file only declares the commands and their flags (commander)
 * and dispatches; each command lives in its own file under cli/:
 *
 * - `gcs-stream cp SOURCE gs://BUCKET/OBJECT` (cli/cp.ts, and cli/append-cp.ts with `--appendable`) parses its
 *   flags into library options and runs `pipeline(source, createGcsWriteStream(options))`; everything about the
 *   upload itself (chunking, retries, checksums, cancelling on failure) is the library's.
 * - `gcs-stream cat [--follow] gs://BUCKET/OBJECT` (cli/cat.ts) prints an object, and with `--follow` keeps printing
 *   an appendable object as it grows (over gRPC; `--json` polls the JSON API instead), until it is finalized.
 * - `gcs-stream serve [--port N] [--grpc-port N]` (cli/serve.ts) runs the local server in the foreground.
 *
 * - `gcs-stream cleanup gs://BUCKET[/PREFIX]` (cli/cleanup.ts) deletes temporary part objects left by parallel
 *   uploads.
 *
 * Exit codes (cli/exit-codes.ts): 0 done; 1 failed; 2 usage error (bad arguments or option values, nothing done);
 * 130 / 143 interrupted by SIGINT / SIGTERM (the README's tables say what each command leaves behind).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError as OptionValueError, Option } from 'commander';
import type { AppendCpFlags } from './cli/append-cp.js';
import { cat, type CatFlags } from './cli/cat.js';
import { addCleanupCommand } from './cli/cleanup.js';
import { cp } from './cli/cp.js';
import { EXIT_OK, EXIT_SIGNAL, EXIT_USAGE } from './cli/exit-codes.js';
import { parseGsUrl } from './cli/gs-url.js';
import { parseDuration, parseSize } from './cli/parse-size.js';
import { exitCodeOf, printError } from './cli/report-error.js';
import { parsePort, serve, type ServeFlags } from './cli/serve.js';
import { collectMetadata, parseCount, SOURCE_OFFSETS, VALIDATIONS } from './cli/upload-options.js';

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
  return parseDuration(text, { allowOff: false });
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

/** `gcs-stream cat`: prints the object (following it with `--follow`); resolves with the exit code. */
async function catCommand(sourceArg: string, flags: CatFlags): Promise<number> {
  const result = await cat(parseGsUrl(sourceArg, 'source'), flags);
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
      optionParser((text: string) => parseDuration(text)),
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
    .option(
      '--checkpoint <file>',
      'after every commit, write a checkpoint to FILE (atomically) for --resume; Ctrl-C then keeps the session and prints the command that resumes it; removed once the upload succeeded',
    )
    .option('--resume <file>', 'continue the upload recorded in a checkpoint FILE (removed once the upload succeeded)')
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
      // cp's own arguments as given, for the command an interrupt prints to resume the upload.
      exitCode = await cp(source, destination, flags, argv.slice(Math.max(2, argv.indexOf('cp', 2))));
    });

  program
    .command('cat')
    .description(
      'Print gs://BUCKET/OBJECT on stdout through the JSON API; with --follow, keep printing as it grows until it is ' +
        'finalized, reading over gRPC (storage v2 BidiReadObject; --json: poll the JSON API instead).',
    )
    .argument('<object>', 'gs://BUCKET/OBJECT')
    .option('-f, --follow', 'keep printing new bytes of an appendable object until it is finalized (like tail -f), over gRPC')
    .option(
      '--interval <duration>',
      'with --follow: how often to check for new bytes once caught up: 200ms, 1s, 1m (default 500ms; 1s with --json)',
      optionParser(parseInterval),
    )
    .option('--json', 'with --follow: follow through the JSON API (for endpoints without gRPC; its size may lag on GCS)')
    .option('--grpc-endpoint <host:port>', 'with --follow: gRPC endpoint (default $STORAGE_EMULATOR_HOST_GRPC, else Google)')
    .option('--endpoint <url>', 'JSON API endpoint (default $STORAGE_EMULATOR_HOST, else https://storage.googleapis.com)')
    .option('--user-project <project>', 'project billed for a requester-pays bucket')
    .action(async (object: string, flags: CatFlags) => {
      exitCode = await catCommand(object, flags);
    });

  program
    .command('serve')
    .description(
      'Run the local GCS server (JSON API and gRPC, objects in memory, no credentials) in the foreground until Ctrl-C; prints its endpoints and the STORAGE_EMULATOR_HOST lines that point clients at it.',
    )
    .option('--port <n>', 'JSON API port on 127.0.0.1 (default 0: any free port)', optionParser(parsePort))
    .option('--grpc-port <n>', 'gRPC port on 127.0.0.1 (default 0: any free port)', optionParser(parsePort))
    .action(async (flags: ServeFlags) => {
      exitCode = await serve(flags);
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
