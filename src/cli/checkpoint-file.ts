/**
 * Checkpoint files for `--checkpoint` and `--resume`. A checkpoint holds the session URI (or, for an appendable
 * object, its write handle), a bearer capability: the file is created readable by its owner only.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AppendableCheckpoint } from '../append/append-options.js';
import type { UploadCheckpoint } from '../core/checkpoint.js';
import type { ParallelCheckpoint } from '../parallel/parallel-checkpoint.js';
import { UsageError } from './usage-error.js';

/**
 * Opening flags of the temporary file: create it, and fail if anything (a file, a symlink) is already there, so that
 * nothing planted beside the checkpoint in a shared directory is ever written to or followed.
 */
const CREATE_NEW = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0);
/** How many fresh names to try before giving up (a clash of 64 random bits means something is wrong). */
const TEMPORARY_NAME_ATTEMPTS = 4;

/**
 * Replaces `path` with `checkpoint` atomically: written to a temporary file beside it, flushed, then renamed over
 * it, so a crash at any moment leaves either the previous checkpoint or this one, never a torn file. The temporary
 * file has a random name, is created exclusively and is readable by its owner only: it holds the session URI.
 */
export function writeCheckpointFile(path: string, checkpoint: UploadCheckpoint | AppendableCheckpoint | ParallelCheckpoint): void {
  const { fd, temporary } = createTemporaryFile(path);
  try {
    try {
      writeSync(fd, `${JSON.stringify(checkpoint)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

function createTemporaryFile(path: string): { fd: number; temporary: string } {
  for (let attempt = 1; ; attempt++) {
    const temporary = `${path}.${randomBytes(8).toString('hex')}.tmp`;
    try {
      return { fd: openSync(temporary, CREATE_NEW, 0o600), temporary };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === TEMPORARY_NAME_ATTEMPTS) throw error;
    }
  }
}

/**
 * Removes the checkpoint file of an upload that succeeded: its session is finished, and a command run again with
 * `--resume` must not go back to it. Returns the error code when the file is there but could not be removed.
 */
export function removeCheckpointFile(path: string): string | undefined {
  try {
    rmSync(path, { force: true });
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'unknown error';
  }
}

/** Throws `UsageError` unless checkpoints can be written to `path` (its directory exists). */
export function checkCheckpointTarget(path: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(dirname(path)).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) throw new UsageError(`--checkpoint ${path}: the directory ${dirname(path)} does not exist`);
}

/**
 * Reads a checkpoint written by `--checkpoint` (or by the `checkpoint` event). Its fields are validated by the
 * library when the stream is created; this only reports unreadable files and broken JSON as usage errors.
 */
export function readCheckpointFile(path: string): UploadCheckpoint | ParallelCheckpoint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`--resume ${path}: cannot read the checkpoint file (${code})`);
  }
  try {
    return JSON.parse(text) as UploadCheckpoint | ParallelCheckpoint;
  } catch {
    throw new UsageError(`--resume ${path}: the checkpoint file is not valid JSON`);
  }
}
