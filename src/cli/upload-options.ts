/**
 * The `cp` command's flags and their translation into library options. Values are passed on as given wherever
 * the library validates them itself (bucket and object names, chunk size alignment, preconditions), so the CLI
 * and the library cannot disagree on what is valid.
 */
import type { UploadCheckpoint } from '../core/checkpoint.js';
import type { ParallelCheckpoint } from '../parallel/parallel-checkpoint.js';
import type { GcsWriteStreamOptions, ObjectMetadata, Validation } from '../core/options.js';
import type { GsLocation } from './gs-url.js';
import { UsageError } from './usage-error.js';

/** Values of `--validation`: the library's `validation` values, as given (the library reads `'none'` itself). */
export const VALIDATIONS = ['crc32c', 'md5', 'both', 'none'] as const satisfies readonly Validation[];
/** Values of `--source-offset`. */
export const SOURCE_OFFSETS = ['checkpoint', 'beginning'] as const;

/** Parsed flags of `gcs-stream cp` (commander's camel-cased option names). */
export interface CpFlags {
  chunkSize?: number;
  bufferChunks?: number;
  /** `--parallel`: parts in flight (parallel composite upload). */
  parallel?: number;
  /** `--part-size`, in bytes. */
  partSize?: number;
  contentType?: string;
  metadata?: Record<string, string>;
  cacheControl?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  ifGenerationMatch?: string;
  endpoint?: string;
  validation?: (typeof VALIDATIONS)[number];
  userProject?: string;
  checkpoint?: string;
  resume?: string;
  sourceOffset?: (typeof SOURCE_OFFSETS)[number];
  json?: boolean;
  quiet?: boolean;
  /** `--max-uncommitted`, in ms (Infinity: off). */
  maxUncommitted?: number;
  /** What buildUploadOptions passes as maxUncommittedMs (the flag, or the CLI's default for the source). */
  maxUncommittedMs?: number;
}

/**
 * The bound on uncommitted data when `--max-uncommitted` is not given: 2 s for standard input, the piped output of
 * a running program (a build log, an event feed), whose bytes may trickle; the library's default for a file, which
 * is read as fast as the link takes it (the bound then never fires).
 */
export function defaultMaxUncommittedMs(plan: { path: string | undefined }): number | undefined {
  return plan.path === undefined ? 2_000 : undefined;
}

/** Parses a positive integer flag value (`--buffer-chunks 4`). */
export function parseCount(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${JSON.stringify(text)} is not a positive integer`);
  }
  return Number(text);
}

/** Adds one `--metadata key=value` to those collected so far (repeatable; a later value for a key wins). */
export function collectMetadata(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new UsageError(`${JSON.stringify(text)} is not key=value`);
  return { ...previous, [text.slice(0, equals)]: text.slice(equals + 1) };
}

/** Library options for an upload to `destination` with `flags`, continuing `resume` if given. */
export function buildUploadOptions(
  destination: GsLocation,
  flags: CpFlags,
  resume?: { checkpoint: UploadCheckpoint | ParallelCheckpoint; sourceStart: 'checkpoint' | 'beginning' },
  size?: number,
): GcsWriteStreamOptions {
  const metadata: ObjectMetadata = {};
  if (flags.cacheControl !== undefined) metadata.cacheControl = flags.cacheControl;
  if (flags.contentEncoding !== undefined) metadata.contentEncoding = flags.contentEncoding;
  if (flags.contentDisposition !== undefined) metadata.contentDisposition = flags.contentDisposition;
  if (flags.metadata !== undefined) metadata.metadata = flags.metadata;

  // No retainWrites, though file and stdin streams would allow it: the benchmark measured no gain from it (the kept
  // buffers cost the garbage collector what the copy saved; bench/RESULTS.md, issue 25).
  const options: GcsWriteStreamOptions = { bucket: destination.bucket, name: destination.name };
  if (Object.keys(metadata).length > 0) options.metadata = metadata;
  if (flags.chunkSize !== undefined) options.chunkSize = flags.chunkSize;
  if (flags.bufferChunks !== undefined) options.bufferChunks = flags.bufferChunks;
  if (flags.parallel !== undefined) options.parallel = flags.parallel;
  if (flags.partSize !== undefined) options.partSize = flags.partSize;
  // Parallel parts cannot bound uncommitted time (nothing is visible before the compose): only an explicit
  // --max-uncommitted is passed on, for the library to refuse.
  const parallel = (flags.parallel ?? 1) > 1;
  if (flags.maxUncommittedMs !== undefined && !(parallel && flags.maxUncommitted === undefined)) {
    options.maxUncommittedMs = flags.maxUncommittedMs;
  }
  if (flags.contentType !== undefined) options.contentType = flags.contentType;
  if (flags.ifGenerationMatch !== undefined) options.ifGenerationMatch = flags.ifGenerationMatch;
  if (flags.endpoint !== undefined) options.apiEndpoint = flags.endpoint;
  if (flags.userProject !== undefined) options.userProject = flags.userProject;
  if (flags.validation !== undefined) options.validation = flags.validation;
  // A regular file's size is declared: a file that shrinks or grows while it is read fails the upload instead of
  // storing whatever was read.
  if (size !== undefined) options.size = size;
  if (resume !== undefined) {
    options.resume = resume.checkpoint;
    options.sourceStart = resume.sourceStart;
  }
  return options;
}
