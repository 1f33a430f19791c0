/**
 * This library with `retainWrites: true` (issue 25): written Buffers are kept by reference until GCS commits them
 * instead of being copied into pool blocks. Safe here because the benchmark's source hands over a fresh Buffer per
 * write and never touches it again, as Node's file, socket and zlib streams do (bench/source.ts). Everything else
 * as the `gcs-resumable-stream` contender.
 */
import type { Contender } from '../contender.js';
import { ours } from './gcs-resumable-stream.js';

export const contender: Contender = ours(
  'gcs-resumable-stream retainWrites',
  'as gcs-resumable-stream, with `retainWrites: true`: written Buffers kept by reference until committed, not copied',
  { retainWrites: true },
);
