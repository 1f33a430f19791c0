/**
 * The `cp` command's SOURCE: a file, or `-` for standard input. A regular file has a known size (the progress bar
 * shows a total and an ETA) and can be read from any offset, which is what lets `--resume` choose where it starts;
 * stdin, pipes and devices are streams that start wherever their producer starts them.
 */
import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { UsageError } from './usage-error.js';

/** What to read. */
export interface SourcePlan {
  /** The file path, or undefined for standard input. */
  path: string | undefined;
  /** Size in bytes when the source is a regular file (then it is also seekable); undefined for streams. */
  size: number | undefined;
}

/** Checks SOURCE before any session is opened: a missing file is a usage error, not a failed upload. */
export function planSource(source: string): SourcePlan {
  if (source === '-') return { path: undefined, size: undefined };
  let stats;
  try {
    stats = statSync(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`source ${source}: ${code === 'ENOENT' ? 'no such file' : `cannot access it (${code ?? 'unknown error'})`}`);
  }
  if (stats.isDirectory()) throw new UsageError(`source ${source} is a directory; give a file, or - for stdin`);
  try {
    accessSync(source, constants.R_OK);
  } catch {
    throw new UsageError(`source ${source}: permission denied`);
  }
  // FIFOs and character devices (process substitution, /dev/stdin) behave like stdin: no size, no seeking.
  return { path: source, size: stats.isFile() ? stats.size : undefined };
}

/**
 * Where a resumed upload's source starts: a regular file is read again from byte 0 by default, so the library
 * checks it against the checkpoint's CRC32C before skipping what the session holds; a stream (stdin, a pipe) is
 * taken to start at the checkpoint's offset, since it cannot be rewound. `--source-offset` overrides either.
 */
export function defaultSourceStart(plan: SourcePlan): 'checkpoint' | 'beginning' {
  return plan.size === undefined ? 'checkpoint' : 'beginning';
}

/** Throws `UsageError` if a regular file is shorter than `start`, the offset a resumed read would begin at. */
export function checkSourceStart(plan: SourcePlan, start: number): void {
  if (plan.size !== undefined && start > plan.size) {
    throw new UsageError(`source ${plan.path} has ${plan.size} bytes, fewer than the ${start} the checkpoint says were uploaded`);
  }
}

/** Opens the planned source; a regular file from byte `start` (streams cannot seek: they start where they are). */
export function openSource(plan: SourcePlan, start = 0): Readable {
  if (plan.path === undefined) return process.stdin;
  return createReadStream(plan.path, plan.size === undefined ? {} : { start });
}

/**
 * Stands between the source and the upload: passes every byte through until {@link InputGate.close}, after which it
 * takes (and drops) whatever still arrives and never reports an end, so that the upload is neither given more bytes
 * nor told that its input is complete. That is how an interrupt with `--checkpoint` leaves the session open: the
 * upload is stopped where it is, without `end()` (which would finalize a truncated object) and without `destroy()`
 * (which cancels the session).
 *
 * For a stream source it also reports the end only `holdEndMs` later. Ctrl-C signals the whole foreground process
 * group: in `pg_dump | gzip | gcs-stream cp - ...` the producers die of it and close the pipe while the same SIGINT
 * is pending here. If the end of input won that race, the stream would finalize a truncated object; held back a
 * moment, the end arrives after the signal handler has already destroyed the upload or closed the gate.
 */
export class InputGate extends Transform {
  readonly #holdEndMs: number;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  /** A gate that reports the end `holdEndMs` after the source's (0: at once). */
  constructor(holdEndMs: number) {
    super();
    this.#holdEndMs = holdEndMs;
  }

  /** From now on nothing more reaches the upload, not even the end of the input. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    if (this.#closed) callback();
    else callback(null, chunk);
  }

  override _flush(callback: (error?: Error | null) => void): void {
    if (this.#closed) return; // never ends: see close()
    if (this.#holdEndMs === 0) {
      callback();
      return;
    }
    this.#timer = setTimeout(() => {
      if (!this.#closed) callback();
    }, this.#holdEndMs);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    callback(error);
  }
}

/** How long a stream source's end is held back (see {@link InputGate}). */
export const STREAM_END_HOLD_MS = 100;
