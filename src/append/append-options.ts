/**
 * Options of {@link createGcsAppendStream}: what users give, the checkpoint format of appendable objects, and the
 * normalized, frozen form the stream works from. Everything is checked here, before any connection is made.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { refuseUnknownKeys, type KnownKeys } from '../core/known-keys.js';
import { normalizeMaxUncommitted, normalizeRetry } from '../core/options.js';
import type { RetryOptions, RetrySettings } from '../core/retry.js';
import { validateBucketName, validateObjectName } from '../core/validate.js';

/** Google's gRPC endpoint for Cloud Storage. */
export const DEFAULT_GRPC_ENDPOINT = 'storage.googleapis.com:443';

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

/** Supplies credentials as request metadata; google-auth-library's `GoogleAuth` and `AuthClient` satisfy it. */
export interface GrpcAuthClient {
  getRequestHeaders(url?: string): Promise<Headers | Record<string, string>>;
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

const ENDPOINT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;
const GOOGLE_HOST = /^(?:[A-Za-z0-9-]+\.)*googleapis\.com:\d+$/i;

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
  const fromEnv = given.grpcEndpoint === undefined ? env.STORAGE_EMULATOR_HOST_GRPC?.replace(/^https?:\/\//, '') || undefined : undefined;
  const jsonEmulator = env.STORAGE_EMULATOR_HOST || undefined;
  if (given.grpcEndpoint === undefined && fromEnv === undefined && jsonEmulator !== undefined) {
    // Going to Google's endpoint with real credentials while the user runs against an emulator would be a surprise
    // at best; guessing the emulator's gRPC port would be a wrong guess (storage-testbench serves gRPC apart).
    throw new InvalidArgumentError(
      `STORAGE_EMULATOR_HOST is set (${JSON.stringify(jsonEmulator.slice(0, 100))}), but append streams speak gRPC, which an emulator serves on a ` +
        'port of its own: set STORAGE_EMULATOR_HOST_GRPC (or the grpcEndpoint option) to its gRPC host:port',
    );
  }
  const grpcEndpoint = given.grpcEndpoint ?? fromEnv ?? DEFAULT_GRPC_ENDPOINT;
  if (typeof grpcEndpoint !== 'string' || !ENDPOINT.test(grpcEndpoint)) {
    throw new InvalidArgumentError(`grpcEndpoint must be host:port, got ${JSON.stringify(grpcEndpoint)}`);
  }
  // An emulator (from the environment, on loopback, or any host but Google's while an emulator variable is set) is
  // reached in plain text and never asked for credentials, as the JSON path treats STORAGE_EMULATOR_HOST.
  const emulating = jsonEmulator !== undefined || (env.STORAGE_EMULATOR_HOST_GRPC || undefined) !== undefined;
  const insecure = fromEnv !== undefined || LOOPBACK.test(grpcEndpoint) || (emulating && !GOOGLE_HOST.test(grpcEndpoint));
  validateBucketName(bucket, !insecure);
  validateObjectName(name);
  if (resume !== undefined && (resume.bucket !== bucket || resume.name !== name)) {
    throw new InvalidArgumentError(`resume: the checkpoint is for gs://${resume.bucket}/${resume.name}, not gs://${bucket}/${name}`);
  }
  if (given.authClient !== undefined && typeof (given.authClient as Partial<GrpcAuthClient>).getRequestHeaders !== 'function') {
    throw new InvalidArgumentError('authClient must have getRequestHeaders() (a google-auth-library client)');
  }
  if (given.contentType !== undefined && typeof given.contentType !== 'string')
    throw new InvalidArgumentError('contentType must be a string');
  const metadata = given.metadata === undefined ? undefined : Object.freeze(stringRecord('metadata', given.metadata));
  const requestHeaders = Object.freeze(stringRecord('requestHeaders', given.requestHeaders ?? {}));
  for (const key of Object.keys(requestHeaders)) {
    if (!/^[a-z0-9_.-]+$/i.test(key) || key.toLowerCase().endsWith('-bin') || key.toLowerCase().startsWith('grpc-')) {
      throw new InvalidArgumentError(`requestHeaders: ${JSON.stringify(key)} is not a valid text metadata key`);
    }
  }
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
    authClient: given.authClient,
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

function stringRecord(field: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`${field} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`${field}.${key} must be a string`);
    out[key] = v;
  }
  return out;
}
