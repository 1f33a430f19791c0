/**
 * `gcs-stream cat [--follow] gs://BUCKET/OBJECT`: prints an object on stdout through the JSON API, with the same
 * credentials rule as `cp` (the default client of `clientFor`: Application Default Credentials for Google, none for
 * an emulator). With `--follow` it keeps printing as an appendable object grows until it is finalized, like `tail -f`
 * that knows when the file is done: over gRPC with `createGcsReadStream({ follow: true })` (storage v2
 * `BidiReadObject`, which reports the size of what is persisted; the JSON API's size of an unfinalized object lags
 * or reads 0 on GCS), or with `--json` by polling the JSON metadata every `--interval`, for endpoints without gRPC.
 * The JSON reading and its retries are object-reader.ts's; this file prints, follows and handles signals.
 */
import { once } from 'node:events';
import { oneLine } from '../core/error-text.js';
import { createGcsReadStream } from '../read/gcs-readable.js';
import { DEFAULT_POLL_MS } from '../read/read-options.js';
import { resolveEndpoint } from '../core/options.js';
import type { RetryEvent } from '../core/retry.js';
import type { GsLocation } from './gs-url.js';
import { ObjectReader } from './object-reader.js';

/** Parsed flags of `gcs-stream cat`. */
export interface CatFlags {
  follow?: boolean;
  /** `--interval`, in ms. */
  interval?: number;
  endpoint?: string;
  /** `--grpc-endpoint` (host:port) of the gRPC follower. */
  grpcEndpoint?: string;
  /** `--json`: follow through the JSON API instead of gRPC. */
  json?: boolean;
  userProject?: string;
}

/** What became of a `cat`. */
export type CatResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'interrupted'; readonly signal: 'SIGINT' | 'SIGTERM' };

/** Default `--interval` with `--json`. */
export const DEFAULT_FOLLOW_INTERVAL_MS = 1_000;

/** Default `--interval` when following over gRPC (the reader's `pollMs`). */
export const DEFAULT_GRPC_FOLLOW_INTERVAL_MS = DEFAULT_POLL_MS;

/** One line on stderr per retry, as `cp` prints them (stdout carries the object). */
function reportRetry({ attempt, delayMs, error }: RetryEvent): void {
  process.stderr.write(`gcs-stream: ${oneLine(error.message)}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)}s\n`);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Prints `location` on stdout; with `--follow`, until it is finalized (over gRPC unless `--json`). */
export function cat(location: GsLocation, flags: CatFlags): Promise<CatResult> {
  if (flags.follow === true && flags.json !== true) return printUntilInterrupted((signal) => followOverGrpc(location, flags, signal));
  // Resolved before anything runs: a malformed endpoint is a usage error, not a failed read.
  const endpoint = resolveEndpoint(flags.endpoint);
  return printUntilInterrupted(async (signal) => {
    const reader = new ObjectReader(endpoint, location, flags, { signal, onRetry: reportRetry });
    const interval = flags.interval ?? DEFAULT_FOLLOW_INTERVAL_MS;
    for (;;) {
      const state = await reader.state();
      while (reader.printed < state.size) {
        const bytes = await reader.read();
        if (bytes.length === 0) break;
        const room = process.stdout.write(bytes);
        reader.advance(bytes.length);
        if (!room) await once(process.stdout, 'drain', { signal });
      }
      if (!flags.follow || (state.finalized && reader.printed >= state.size)) break;
      await pause(interval, signal);
      if (signal.aborted) break;
    }
  });
}

/** `cat --follow` over gRPC: the library's reader, printed as it delivers. */
async function followOverGrpc(location: GsLocation, flags: CatFlags, signal: AbortSignal): Promise<void> {
  const reader = createGcsReadStream({
    bucket: location.bucket,
    name: location.name,
    follow: true,
    pollMs: flags.interval ?? DEFAULT_GRPC_FOLLOW_INTERVAL_MS,
    ...(flags.grpcEndpoint === undefined ? {} : { grpcEndpoint: flags.grpcEndpoint }),
    ...(flags.userProject === undefined ? {} : { requestHeaders: { 'x-goog-user-project': flags.userProject } }),
    signal,
  });
  reader.on('retry', reportRetry);
  for await (const bytes of reader) {
    if (!process.stdout.write(bytes as Buffer)) await once(process.stdout, 'drain', { signal });
  }
}

/**
 * Runs `print` with a signal that SIGINT, SIGTERM and a closed stdout abort: an interrupt or a reader that went away
 * (`cat --follow | head`, the normal end of a pipe) ends the output without a failure.
 */
async function printUntilInterrupted(print: (signal: AbortSignal) => Promise<void>): Promise<CatResult> {
  const controller = new AbortController();
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    interrupted ??= signal;
    controller.abort();
  };
  const onStdoutError = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);
  try {
    await print(controller.signal);
  } catch (error) {
    if (!controller.signal.aborted) return { kind: 'failed', error };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
  }
  if (interrupted !== undefined) return { kind: 'interrupted', signal: interrupted };
  return { kind: 'done' };
}
