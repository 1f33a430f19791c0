/**
 * Checkpoint files for `--checkpoint` and `--resume`. A checkpoint holds the session URI, a bearer capability: the
 * file is created readable by its owner only.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { UploadCheckpoint } from '../checkpoint.js';
import { UsageError } from './usage-error.js';

/**
 * Replaces `path` with `checkpoint` atomically: written to a temporary file beside it, flushed, then renamed over
 * it, so a crash at any moment leaves either the previous checkpoint or this one, never a torn file.
 */
export function writeCheckpointFile(path: string, checkpoint: UploadCheckpoint): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(checkpoint)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
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
export function readCheckpointFile(path: string): UploadCheckpoint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`--resume ${path}: cannot read the checkpoint file (${code})`);
  }
  try {
    return JSON.parse(text) as UploadCheckpoint;
  } catch {
    throw new UsageError(`--resume ${path}: the checkpoint file is not valid JSON`);
  }
}
