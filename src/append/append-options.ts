/**
 * Options of {@link createGcsAppendStream}: what users give, the checkpoint format of appendable objects, and the
 * normalized, frozen form the stream works from. Everything is checked here, before any connection is made.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { refuseUnknownKeys, type KnownKeys } from '../core/known-keys.js';
import { normalizeMaxUncommitted, normalizeRetry } from '../core/options.js';
import type { RetryOptions, RetrySettings } from '../core/retry.js';
import { validateBucketName, validateObjectName } from '../core/validate.js';
import {
  normalizeRequestHeaders,
  resolveGrpcEndpoint,
  stringRecord,
  validateGrpcAuthClient,
  type GrpcAuthClient,
} from '../grpc/grpc-connection.js';

export { DEFAULT_GRPC_ENDPOINT, type GrpcAuthClient } from '../grpc/grpc-connection.js';

/** Where an appendable object stood after a persist: enough for another process to take it over and continue. */
export interface AppendableCheckpoint {
  version: 1;
  kind: 'appendable';
  bucket: string;
  name: string;
  /** The object's generation (decimal string: it exceeds 2^53). */
  generation: string;
  /** Bytes the server reported persisted (readable); a takeover may find the object longer (see the README). */
  bytesCommitted: number;
  /** Raw CRC32C of the first `bytesCommitted` bytes. */
  crc32c: number;
  /** The write handle (base64), when the server gave one: it lets the next writer reopen the object faster. */
  writeHandle?: string;
}

/** Options of {@link createGcsAppendStream}. */
export interface GcsAppendStreamOptions {
  /** Bucket name (a zonal bucket on GCS); required unless `resume` supplies it. */
  bucket?: string;
  /** Object name; required unless `resume` supplies it. */
  name?: string;
  /**
   * `host:port` of the gRPC endpoint. Default: `STORAGE_EMULATOR_HOST_GRPC` when set (an emulator: plain-text, no
   * credentials), else `storage.googleapis.com:443` over TLS with credentials. A loopback host is always plain-text,
   * and so is a host other than Google's while an emulator variable is set. With only `STORAGE_EMULATOR_HOST` set
   * (the JSON API's emulator), the stream refuses to start: emulators serve gRPC on a port of its own, which
   * `STORAGE_EMULATOR_HOST_GRPC` names, as Google's clients read it.
   */
  grpcEndpoint?: string;
  /**
   * Credentials; default google-auth-library's Application Default Credentials, which an emulator endpoint never
   * asks for. When given, its headers are sent to any endpoint, as on the JSON path.
   */
  authClient?: GrpcAuthClient;
  contentType?: string;
  /** Custom metadata of the object. */
  metadata?: Record<string, string>;
  /** Create only if the live generation is this one; 0: only if the object does not exist. */
  ifGenerationMatch?: number | string;
  /** Whether `end()` finalizes the object (default true); false leaves it appendable for a later writer. */
  finalize?: boolean;
  /** Persist accepted bytes at least this often, in milliseconds (default 10 000; Infinity: only on flush/end). */
  maxUncommittedMs?: number;
  /** Take over an unfinalized appendable object from a checkpoint and continue it. */
  resume?: AppendableCheckpoint;
  /** With `resume`: the source starts at the checkpoint (default) or at the object's first byte. */
  sourceStart?: 'checkpoint' | 'beginning';
  /** Retry settings, as on the resumable stream (the budget resets whenever the persisted size grows). */
  retry?: RetryOptions;
  /** Aborts the stream (it errors with `UploadAbortedError`; nothing is finalized). */
  signal?: AbortSignal;
  /** Extra gRPC metadata sent with every stream (e.g. `x-goog-user-project`, tracing). */
  requestHeaders?: Record<string, string>;
}

/**
 * The option names {@link normalizeAppendOptions} accepts; any other is refused. The compiler checks the list
 * against {@link GcsAppendStreamOptions}: a new option is one line here.
 */
const APPEND_STREAM_OPTIONS = {
  bucket: true,
  name: true,
  grpcEndpoint: true,
  authClient: true,
  contentType: true,
  metadata: true,
  ifGenerationMatch: true,
  finalize: true,
  maxUncommittedMs: true,
  resume: true,
  sourceStart: true,
  retry: true,
  signal: true,
  requestHeaders: true,
} as const satisfies KnownKeys<GcsAppendStreamOptions>;

/** The options a stream works from. */
export interface NormalizedAppendOptions {
  readonly bucket: string;
  readonly name: string;
  readonly grpcEndpoint: string;
  /** Plain-text and no credentials (an emulator or the local server). */
  readonly insecure: boolean;
  readonly authClient: GrpcAuthClient | undefined;
  readonly contentType: string | undefined;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  readonly ifGenerationMatch: string | undefined;
  readonly finalize: boolean;
  readonly maxUncommittedMs: number;
  readonly resume: AppendableCheckpoint | undefined;
  /** Object offset of the first byte written to the stream. */
  readonly sourceOffset: number;
  readonly retry: Readonly<RetrySettings>;
  readonly signal: AbortSignal | undefined;
  readonly requestHeaders: Readonly<Record<string, string>>;
}

/** Checks that `value` is an appendable checkpoint; throws `InvalidArgumentError` otherwise. */
export function validateAppendableCheckpoint(value: unknown): AppendableCheckpoint {
  const c = value as Partial<AppendableCheckpoint> | null;
  if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('resume must be a checkpoint object');
  if (c.version !== 1 || c.kind !== 'appendable') {
    throw new InvalidArgumentError(
      "resume: not an appendable checkpoint (version 1, kind 'appendable'); resumable checkpoints go to createGcsWriteStream",
    );
  }
  if (typeof c.bucket !== 'string' || typeof c.name !== 'string')
    throw new InvalidArgumentError('resume: the checkpoint has no bucket or name');
  if (typeof c.generation !== 'string' || !/^[1-9]\d*$/.test(c.generation))
    throw new InvalidArgumentError('resume: the checkpoint has no valid generation');
  if (typeof c.bytesCommitted !== 'number' || !Number.isSafeInteger(c.bytesCommitted) || c.bytesCommitted < 0) {
    throw new InvalidArgumentError('resume: the checkpoint has no valid bytesCommitted');
  }
  if (typeof c.crc32c !== 'number' || !Number.isInteger(c.crc32c) || c.crc32c < 0 || c.crc32c > 0xffffffff) {
    throw new InvalidArgumentError('resume: the checkpoint has no valid crc32c');
  }
  if (c.writeHandle !== undefined && typeof c.writeHandle !== 'string')
    throw new InvalidArgumentError('resume: writeHandle must be a base64 string');
  const checkpoint: AppendableCheckpoint = {
    version: 1,
    kind: 'appendable',
    bucket: c.bucket,
    name: c.name,
    generation: c.generation,
    bytesCommitted: c.bytesCommitted,
    crc32c: c.crc32c,
  };
  if (c.writeHandle !== undefined) checkpoint.writeHandle = c.writeHandle;
  return Object.freeze(checkpoint);
}

/** Validates and normalizes `given`; throws `InvalidArgumentError` on the first problem. */
export function normalizeAppendOptions(given: GcsAppendStreamOptions, env: NodeJS.ProcessEnv = process.env): NormalizedAppendOptions {
  if (typeof given !== 'object' || given === null) throw new InvalidArgumentError('options must be an object');
  refuseUnknownKeys(given, APPEND_STREAM_OPTIONS);
  const resume = given.resume === undefined ? undefined : validateAppendableCheckpoint(given.resume);
  const bucket = given.bucket ?? resume?.bucket;
  const name = given.name ?? resume?.name;
  const { grpcEndpoint, insecure } = resolveGrpcEndpoint(given.grpcEndpoint, env);
  validateBucketName(bucket, !insecure);
  validateObjectName(name);
  if (resume !== undefined && (resume.bucket !== bucket || resume.name !== name)) {
    throw new InvalidArgumentError(`resume: the checkpoint is for gs://${resume.bucket}/${resume.name}, not gs://${bucket}/${name}`);
  }
  const authClient = validateGrpcAuthClient(given.authClient);
  if (given.contentType !== undefined && typeof given.contentType !== 'string')
    throw new InvalidArgumentError('contentType must be a string');
  const metadata = given.metadata === undefined ? undefined : Object.freeze(stringRecord('metadata', given.metadata));
  const requestHeaders = normalizeRequestHeaders(given.requestHeaders);
  let ifGenerationMatch: string | undefined;
  if (given.ifGenerationMatch !== undefined) {
    ifGenerationMatch = String(given.ifGenerationMatch);
    if (!/^\d+$/.test(ifGenerationMatch))
      throw new InvalidArgumentError(`ifGenerationMatch must be a generation number or 0, got ${ifGenerationMatch}`);
    if (resume !== undefined) throw new InvalidArgumentError('ifGenerationMatch applies to creating an object, not to resume');
  }
  if (given.finalize !== undefined && typeof given.finalize !== 'boolean') throw new InvalidArgumentError('finalize must be a boolean');
  const sourceStart = given.sourceStart ?? 'checkpoint';
  if (sourceStart !== 'checkpoint' && sourceStart !== 'beginning') {
    throw new InvalidArgumentError(`sourceStart must be 'checkpoint' or 'beginning', got ${String(sourceStart)}`);
  }
  if (given.signal !== undefined && !(given.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  return Object.freeze({
    bucket,
    name,
    grpcEndpoint,
    insecure,
    authClient,
    contentType: given.contentType,
    metadata,
    ifGenerationMatch,
    finalize: given.finalize ?? true,
    maxUncommittedMs: normalizeMaxUncommitted(given.maxUncommittedMs),
    resume,
    sourceOffset: resume !== undefined && sourceStart === 'checkpoint' ? resume.bytesCommitted : 0,
    retry: normalizeRetry(given.retry),
    signal: given.signal,
    requestHeaders,
  });
}
