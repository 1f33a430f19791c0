/**
 * This library with `checksumWorker: true` (issue 25): the CRC32C of each filled block computed on the process's
 * worker thread instead of the stream's own. Runs only where named (`--contenders`): it answers one question, what
 * the worker changes, and is not part of the matrix.
 */
import type { Contender } from '../contender.js';
import { ours } from './gcs-resumable-stream.js';

export const contender: Contender = ours(
  'gcs-resumable-stream checksumWorker',
  'as gcs-resumable-stream, with `checksumWorker: true`: filled blocks hashed on a worker thread',
  { checksumWorker: true },
);
