/**
 * Public options, their defaults, and validation. `normalizeOptions` never mutates what the caller passed; it
 * returns a new frozen object that the rest of the library reads.
 */
import type { AuthorizedClient } from './auth.js';
import { validateCheckpoint, type UploadCheckpoint } from './checkpoint.js';
import { isParallelCheckpoint, validateParallelCheckpoint, type ParallelCheckpoint } from '../parallel/parallel-checkpoint.js';
import { InvalidArgumentError } from './errors.js';
import { refuseUnknownKeys, type KnownKeys } from './known-keys.js';
import { optionsFromFile, optionsFromStorage, type StorageFileLike, type StorageLike } from './interop.js';
import type { Preconditions } from './preconditions.js';
import { DEFAULT_RETRY, type RetryOptions, type RetrySettings } from './retry.js';
import { MemoryPool } from './memory-pool.js';
import { availableParallelism } from 'node:os';
import { CHUNK_ALIGNMENT, validateBucketName, validateChunkSize, validateObjectName } from './validate.js';

/** Default request size: GCS's own advice for throughput. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
/**
 * Default per-stream cap in chunks (128 MiB). Only a stream whose answers' fixed latency dominates gets near it: a
 * session takes one request at a time, so such a stream needs about 12 × bandwidth × latency to keep the link busy
 * (see pacing.ts). A link-bound stream stays within two chunks, a slow one within a block or two, and every window
 * draws from its pool, whose ceiling bounds them together. The fixed latency is measured from a few answers, which a
 * loaded machine inflates; the pool's ceiling is what bounds the memory such an estimate may cost.
 */
export const DEFAULT_BUFFER_CHUNKS = 16;
/** Where the JSON API lives unless told otherwise. */
export const DEFAULT_API_ENDPOINT = 'https://storage.googleapis.com';
/** Default part size of a parallel composite upload (`parallel > 1`). */
export const DEFAULT_PART_SIZE = 32 * 1024 * 1024;
/** Default prefix under which a parallel composite upload names its temporary objects. */
export const DEFAULT_PART_PREFIX = 'gcs-stream-parts/';

/** Object resource fields that can be set when the object is created. */
export interface ObjectMetadata {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  storageClass?: string;
  /** Custom key/value metadata (`x-goog-meta-*`). */
  metadata?: Record<string, string>;
  [field: string]: unknown;
}

/**
 * Which whole-object checksums to compute, send with the final request, and compare with the stored object:
 * `'none'` checks nothing (the CLI's `--validation none`); `false` is the same as `'none'`, kept for compatibility.
 */
export type Validation = 'crc32c' | 'md5' | 'both' | 'none' | false;

/** Every value {@link Validation} accepts, in the order messages list them. */
const VALIDATIONS: readonly Validation[] = ['crc32c', 'md5', 'both', 'none', false];

/** Options of {@link createGcsWriteStream}. */
export interface GcsWriteStreamOptions extends Preconditions {
  /** Bucket name; required unless `file` or `resume` supplies it. */
  bucket?: string;
  /** Object name (1..1024 UTF-8 bytes, no CR/LF, not `.` or `..`); required unless `file` or `resume` supplies it. */
  name?: string;
  /**
   * A `@google-cloud/storage` `File`: supplies bucket, name, endpoint, auth client, userProject, kmsKeyName and the
   * file's preconditions. Options given explicitly win.
   */
  file?: StorageFileLike;
  /** A `@google-cloud/storage` `Storage`: supplies endpoint and auth client (give bucket and name too). */
  storage?: StorageLike;
  /**
   * Continue the upload of a checkpoint (from the `checkpoint` event) instead of starting a new one: a session's
   * checkpoint, or (with `parallel > 1`) a parallel upload's, whose stored parts are not uploaded again.
   */
  resume?: UploadCheckpoint | ParallelCheckpoint;
  /**
   * Parts uploaded at once (parallel composite upload). 1 or absent: one resumable session, as always. Above 1: the
   * source is cut into parts of `partSize` bytes, each uploaded as a temporary object under `partPrefix` (up to
   * `parallel` at a time, each with the recovery, retry and CRC32C of a session), composed into the object at
   * `end()`, then deleted. A source of at most `partSize` bytes is uploaded as one ordinary object. Refused with
   * `validation` including MD5 (a composite object has none) and with `maxUncommittedMs`; `flush()` rejects.
   * For bulk streams: a source slower than one session gains nothing. See the README on composite objects.
   */
  parallel?: number;
  /**
   * Bytes per part with `parallel > 1`: a multiple of 262,144, at least 262,144. Default 32 MiB. A stream holds at
   * most `(parallel + 1) × partSize` bytes of pool memory.
   */
  partSize?: number;
  /**
   * Where the temporary parts of a parallel upload are named, in the destination's bucket:
   * `${partPrefix}${uploadId}/${index}`. Default `gcs-stream-parts/` (a lifecycle rule on it removes what a crashed
   * process left; so does `gcs-stream cleanup`).
   */
  partPrefix?: string;
  /**
   * Where the source written to a resumed stream starts: `'checkpoint'` (default): at `resume.bytesCommitted`;
   * `'beginning'`: at byte 0 (the stream skips, and checks, what the session already has).
   */
  sourceStart?: 'checkpoint' | 'beginning';
  /**
   * The object's exact size in bytes, when it is known up front (a file's size). It is declared to GCS
   * (`X-Upload-Content-Length`), and a source that writes more, or ends with fewer bytes, fails the stream with a
   * `SizeMismatchError` before anything is finalized: a source cut short never becomes a short object. Default:
   * unknown.
   */
  size?: number;
  /**
   * The largest request while answer latency does not dominate: a positive multiple of 262,144. Default 8 MiB. A
   * slow source sends smaller requests (as little as one 256 KiB block); see `adaptiveRequests`.
   */
  chunkSize?: number;
  /**
   * The per-stream memory cap, in chunks: the window (bytes accepted and not yet committed, in 256 KiB blocks from
   * the `memory` pool) never holds more than `chunkSize × bufferChunks`. A window starts at one block and grows
   * only while memory holds the writer back (by what the writer fell short while it waited): to two chunks when the
   * link is the limit, towards 12 × bandwidth × latency while answer latency dominates (then requests may carry more
   * than `chunkSize`). Default 16 (128 MiB), minimum 1; the pool's ceiling bounds all windows together.
   */
  bufferChunks?: number;
  /**
   * Size requests by measurement: as little as one block while the source is slow, up to `chunkSize` when it is
   * fast, and the whole window while the fixed part of the server's answer time (a WAN round trip) exceeds a chunk
   * fill of the source. Default true; false: every request but the last carries exactly `chunkSize` (fewer when the
   * pool makes the writer wait), and the window may fill to its cap.
   */
  adaptiveRequests?: boolean;
  /**
   * The bound on how long accepted bytes may wait uncommitted (ms): once the oldest of them has waited this long,
   * the stream commits every full 256 KiB block it holds, whatever the request sizing would wait for. (The JSON API
   * cannot commit a partial block before the end, so a crash loses at most max(rate × interval, 256 KiB) plus one
   * request in flight.) A fast stream never reaches it; a slow one pays at most one request per interval.
   * Default 10,000; `Infinity` turns it off.
   */
  maxUncommittedMs?: number;
  /**
   * Keep written Buffers by reference until GCS has committed their bytes, instead of copying them into the
   * window's pool blocks: no copy, and the window holds exactly the bytes it has not committed rather than whole
   * 256 KiB blocks. The kept buffers become garbage once committed, where pool blocks are reused: the benchmark
   * measured no net gain in CPU or memory from it (README, Memory). Only for writers that hand over a fresh Buffer per write and never touch it again: Node's
   * file, socket, pipe and stdin streams, zlib and crypto streams do. Writes under 4 KiB, and Buffers that are less
   * than half of their memory (a small slice of a large buffer would keep all of it alive), are still copied; the
   * pool counts kept bytes like copied ones (`MemoryPool` `bytesReferenced`), so its ceiling still bounds them.
   * A kept Buffer changed after `write()` is caught by the CRC32C, hashed as it is written: the upload then fails
   * with `ChecksumMismatchError` and stores nothing (with `validation: 'none'` nothing catches it). Default false.
   */
  retainWrites?: boolean;
  /**
   * Compute the CRC32C of each filled 256 KiB block on a worker thread (one per process, shared by every stream,
   * started when the first block fills) while this thread goes on copying writes and sending requests. A block
   * whose checksum is needed before the worker answered (a commit, the final request), kept writes
   * (`retainWrites`) and a partly filled last block are hashed on this thread; MD5, when validated, always is. The
   * object's checksum is the same either way. It moves CPU time, it does not save it: turn it on where this thread
   * is what the upload waits for and a core is idle. Where every core is busy (a 2-core machine that also runs
   * other work) the worker takes turns with them and the upload is slower (bench/RESULTS-checksum-worker.md).
   * Ignored on a machine with one core (`os.availableParallelism()`): there it could only slow the stream down.
   * Default false.
   */
  checksumWorker?: boolean;
  /**
   * The pool the window's blocks come from: a {@link MemoryPool} shared by every stream given it, with one byte
   * ceiling. Default: the process's pool, `MemoryPool.default` (512 MiB).
   */
  memory?: MemoryPool;
  /** MIME type of the object. Default `application/octet-stream` (GCS's default). */
  contentType?: string;
  /** Object resource fields (contentEncoding, cacheControl, custom `metadata`, ...). */
  metadata?: ObjectMetadata;
  /** JSON API endpoint. Default: `STORAGE_EMULATOR_HOST` if set, else `https://storage.googleapis.com`. */
  apiEndpoint?: string;
  /** Client that performs every HTTP request (adds credentials). Default: google-auth-library `GoogleAuth`. */
  authClient?: AuthorizedClient;
  /** Project billed for requester-pays buckets. */
  userProject?: string;
  /**
   * Extra HTTP headers sent with every request (tracing, `x-goog-user-project`, ...). The protocol's own headers
   * (Content-Range, Content-Length, X-Goog-Hash, X-Upload-*, Authorization, Host) cannot be set this way.
   */
  requestHeaders?: Record<string, string>;
  /** Predefined ACL applied to the new object (e.g. `private`, `publicRead`). */
  predefinedAcl?: string;
  /** Cloud KMS key to encrypt the object with. */
  kmsKeyName?: string;
  /** Whole-object checksums to verify: `'crc32c'` (default), `'md5'`, `'both'`, or `'none'` (`false` means the same). */
  validation?: Validation;
  /** Retry and timeout policy; every field optional. */
  retry?: RetryOptions;
  /** Aborting it destroys the stream, cancels the session, and never finalizes the object. */
  signal?: AbortSignal;
}

/**
 * The option names {@link normalizeOptions} accepts; any other is refused (a typo would otherwise be ignored). The
 * compiler checks this list against {@link GcsWriteStreamOptions}: adding an option there and here is one line each.
 */
const WRITE_STREAM_OPTIONS = {
  bucket: true,
  name: true,
  file: true,
  storage: true,
  resume: true,
  sourceStart: true,
  size: true,
  chunkSize: true,
  bufferChunks: true,
  parallel: true,
  partSize: true,
  partPrefix: true,
  adaptiveRequests: true,
  maxUncommittedMs: true,
  retainWrites: true,
  checksumWorker: true,
  memory: true,
  contentType: true,
  metadata: true,
  apiEndpoint: true,
  authClient: true,
  userProject: true,
  requestHeaders: true,
  predefinedAcl: true,
  kmsKeyName: true,
  validation: true,
  retry: true,
  signal: true,
  ifGenerationMatch: true,
  ifGenerationNotMatch: true,
  ifMetagenerationMatch: true,
  ifMetagenerationNotMatch: true,
} as const satisfies KnownKeys<GcsWriteStreamOptions>;

/** The names of {@link RetryOptions}, checked by the compiler against the interface. */
const RETRY_OPTIONS = {
  maxAttempts: true,
  initialDelayMs: true,
  maxDelayMs: true,
  multiplier: true,
  stallTimeoutMs: true,
  shouldRetry: true,
} as const satisfies KnownKeys<RetryOptions>;

/** Options after defaults and validation; frozen. */
export interface NormalizedOptions {
  readonly bucket: string;
  readonly name: string;
  /** The declared object size, if known. */
  readonly size: number | undefined;
  readonly chunkSize: number;
  readonly bufferChunks: number;
  readonly memory: MemoryPool;
  readonly maxUncommittedMs: number;
  readonly adaptiveRequests: boolean;
  readonly retainWrites: boolean;
  readonly checksumWorker: boolean;
  readonly resource: Readonly<ObjectMetadata>;
  readonly apiEndpoint: string;
  /** True when the endpoint is not Google's: no credentials are needed by default. */
  readonly isEmulator: boolean;
  readonly requestHeaders: Readonly<Record<string, string>>;
  readonly authClient: AuthorizedClient | undefined;
  readonly query: Readonly<Record<string, string>>;
  /** `'none'` is given as `false` here: one value for "check nothing". */
  readonly validation: Exclude<Validation, 'none'>;
  readonly retry: Readonly<RetrySettings>;
  readonly signal: AbortSignal | undefined;
  readonly resume: UploadCheckpoint | undefined;
  /** Parts in flight at once; 1: one resumable session. */
  readonly parallel: number;
  /** Bytes per part (with parallel > 1). */
  readonly partSize: number;
  /** Prefix of the temporary part objects (with parallel > 1). */
  readonly partPrefix: string;
  /** The parallel upload's checkpoint to continue, if any (then `resume` is undefined). */
  readonly parallelResume: ParallelCheckpoint | undefined;
  /** Object offset of the first byte the writer supplies. */
  readonly sourceOffset: number;
}

/** `host` or `host:port` that plainly names a server: a dotted name or address, `localhost`, an IPv6 literal, or any host with a port. */
const HOST_LIKE =
  /^(?:\[[0-9a-f:.]+\](?::\d{1,5})?|[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d{1,5})?|localhost(?::\d{1,5})?|[a-z0-9-]+:\d{1,5})(?:\/.*)?$/i;

/**
 * The endpoint rule of the official clients: explicit option, then `STORAGE_EMULATOR_HOST`, then Google's. A
 * scheme-less `STORAGE_EMULATOR_HOST` (`127.0.0.1:9000`) is taken as http, as Google's Go client does (emulators
 * speak plain HTTP); a scheme-less `apiEndpoint` as https. A value without a scheme must look like a host (a dot, a
 * port, `localhost`): `notaurl` is refused here, before any byte, instead of failing DNS lookups for a minute.
 */
export function resolveEndpoint(apiEndpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = apiEndpoint === undefined ? env.STORAGE_EMULATOR_HOST || undefined : undefined;
  const raw = apiEndpoint ?? fromEnv ?? DEFAULT_API_ENDPOINT;
  const field = fromEnv === undefined ? 'apiEndpoint' : 'STORAGE_EMULATOR_HOST';
  if (typeof raw !== 'string') throw new InvalidArgumentError(`apiEndpoint must be a URL string, got ${typeof raw}`);
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  if (!hasScheme && !HOST_LIKE.test(raw)) {
    throw new InvalidArgumentError(
      `${field} ${JSON.stringify(raw)} is not a URL: give a scheme and a host, e.g. https://storage.googleapis.com or http://127.0.0.1:4443`,
    );
  }
  const withScheme = hasScheme ? raw : `${fromEnv === undefined ? 'https' : 'http'}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(raw)} is not a valid URL`);
  }
  if (url.hostname === '') throw new InvalidArgumentError(`${field} ${JSON.stringify(raw)} has no host`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidArgumentError(`apiEndpoint must use http or https, got ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new InvalidArgumentError('apiEndpoint must not contain credentials, a query or a fragment');
  }
  return url.toString().replace(/\/+$/, '');
}

/**
 * Whether requests to `resolved` (from `resolveEndpoint(given, env)`) need no credentials: the endpoint came from
 * `STORAGE_EMULATOR_HOST`, or is not a Google host.
 */
export function isEmulatorEndpoint(given: string | undefined, resolved: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (Boolean(env.STORAGE_EMULATOR_HOST) && given === undefined) || !isGoogleHost(resolved);
}

/** Whether `endpoint` (a URL) is on one of Google's hosts (`*.googleapis.com`). */
export function isGoogleHost(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'googleapis.com' || host.endsWith('.googleapis.com');
}

function positiveInt(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${field} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function normalizeRetry(retry: RetryOptions | undefined): RetrySettings {
  if (retry !== undefined && (typeof retry !== 'object' || retry === null)) {
    throw new InvalidArgumentError('retry must be an object');
  }
  if (retry !== undefined) refuseUnknownKeys(retry, RETRY_OPTIONS, 'retry.');
  const merged = { ...DEFAULT_RETRY, ...stripUndefined(retry ?? {}) };
  positiveInt('retry.maxAttempts', merged.maxAttempts, 1);
  positiveInt('retry.initialDelayMs', merged.initialDelayMs, 0);
  positiveInt('retry.maxDelayMs', merged.maxDelayMs, 0);
  positiveInt('retry.stallTimeoutMs', merged.stallTimeoutMs, 1);
  if (typeof merged.multiplier !== 'number' || !(merged.multiplier >= 1) || !Number.isFinite(merged.multiplier)) {
    throw new InvalidArgumentError(`retry.multiplier must be a finite number >= 1, got ${String(merged.multiplier)}`);
  }
  if (merged.maxDelayMs < merged.initialDelayMs) {
    throw new InvalidArgumentError('retry.maxDelayMs must not be below retry.initialDelayMs');
  }
  if (merged.shouldRetry !== undefined && typeof merged.shouldRetry !== 'function') {
    throw new InvalidArgumentError(`retry.shouldRetry must be a function, got ${typeof merged.shouldRetry}`);
  }
  return Object.freeze(merged);
}

/** Headers the protocol sets itself: a user's value would break it (or leak into a credential). */
const RESERVED_HEADERS =
  /^(content-range|content-length|content-type|x-goog-hash|x-upload-.*|authorization|host|transfer-encoding|connection)$/i;
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function normalizeRequestHeaders(given: Record<string, string> | undefined): Readonly<Record<string, string>> {
  if (given === undefined) return Object.freeze({});
  if (typeof given !== 'object' || given === null)
    throw new InvalidArgumentError('requestHeaders must be an object of header names to string values');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(given)) {
    if (!HEADER_NAME.test(name)) throw new InvalidArgumentError(`requestHeaders: ${JSON.stringify(name)} is not a valid header name`);
    if (RESERVED_HEADERS.test(name)) throw new InvalidArgumentError(`requestHeaders: ${name} is set by the protocol and cannot be given`);
    // eslint-disable-next-line no-control-regex
    if (typeof value !== 'string' || /[\r\n\u0000]/.test(value)) {
      throw new InvalidArgumentError(`requestHeaders: the value of ${name} must be a string without CR, LF or NUL`);
    }
    headers[name] = value;
  }
  return Object.freeze(headers);
}

/** Default bound on uncommitted data: a crash of a slow stream loses at most the last ten seconds (or 256 KiB). */
export const DEFAULT_MAX_UNCOMMITTED_MS = 10_000;

export function normalizeMaxUncommitted(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_UNCOMMITTED_MS;
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`maxUncommittedMs must be a positive integer of milliseconds or Infinity, got ${String(value)}`);
  }
  return value;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const PRECONDITIONS = ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const;

/** Validates everything that can be checked before a request and applies defaults. */
export function normalizeOptions(given: GcsWriteStreamOptions, env: NodeJS.ProcessEnv = process.env): NormalizedOptions {
  if (typeof given !== 'object' || given === null) {
    throw new InvalidArgumentError('options must be an object with at least bucket and name');
  }
  refuseUnknownKeys(given, WRITE_STREAM_OPTIONS);
  const parallelResume = isParallelCheckpoint(given.resume) ? validateParallelCheckpoint(given.resume) : undefined;
  const resume = given.resume === undefined || parallelResume !== undefined ? undefined : validateCheckpoint(given.resume);
  const derived =
    given.file !== undefined ? optionsFromFile(given.file) : given.storage !== undefined ? optionsFromStorage(given.storage) : {};
  const options: GcsWriteStreamOptions = {
    ...(resume ? { bucket: resume.bucket, name: resume.name } : {}),
    ...(parallelResume ? { bucket: parallelResume.bucket, name: parallelResume.name } : {}),
    ...derived,
    ...stripUndefined(given),
  };
  const apiEndpoint = resolveEndpoint(options.apiEndpoint, env);
  const isEmulator = isEmulatorEndpoint(options.apiEndpoint, apiEndpoint, env);
  validateBucketName(options.bucket, !isEmulator);
  validateObjectName(options.name);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  validateChunkSize(chunkSize);
  const bufferChunks = positiveInt('bufferChunks', options.bufferChunks ?? DEFAULT_BUFFER_CHUNKS, 1);
  if (!Number.isSafeInteger(chunkSize * bufferChunks)) {
    throw new InvalidArgumentError(`chunkSize × bufferChunks must be a safe integer, got ${chunkSize} × ${bufferChunks}`);
  }
  if (options.memory !== undefined && !(options.memory instanceof MemoryPool)) {
    throw new InvalidArgumentError('memory must be a MemoryPool');
  }
  if (options.retainWrites !== undefined && typeof options.retainWrites !== 'boolean') {
    throw new InvalidArgumentError(`retainWrites must be a boolean, got ${typeof options.retainWrites}`);
  }
  if (options.checksumWorker !== undefined && typeof options.checksumWorker !== 'boolean') {
    throw new InvalidArgumentError(`checksumWorker must be a boolean, got ${typeof options.checksumWorker}`);
  }
  if (options.adaptiveRequests !== undefined && typeof options.adaptiveRequests !== 'boolean') {
    throw new InvalidArgumentError('adaptiveRequests must be a boolean');
  }

  if (options.metadata !== undefined && (typeof options.metadata !== 'object' || options.metadata === null)) {
    throw new InvalidArgumentError('metadata must be an object of object resource fields');
  }
  const resource: ObjectMetadata = { ...(options.metadata ?? {}) };
  delete resource.name;
  delete resource.bucket;
  if (options.contentType !== undefined) resource.contentType = options.contentType;
  if (resource.contentType !== undefined && typeof resource.contentType !== 'string') {
    throw new InvalidArgumentError('contentType must be a string');
  }
  if (resource.metadata !== undefined) {
    if (typeof resource.metadata !== 'object' || resource.metadata === null) {
      throw new InvalidArgumentError('metadata.metadata (custom metadata) must be an object of strings');
    }
    resource.metadata = { ...resource.metadata };
  }

  const query: Record<string, string> = {};
  for (const key of PRECONDITIONS) {
    const value = options[key];
    if (value === undefined) continue;
    const text = String(value);
    if (!/^\d+$/.test(text)) {
      throw new InvalidArgumentError(`${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
    query[key] = text;
  }
  for (const key of ['userProject', 'predefinedAcl', 'kmsKeyName'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidArgumentError(`${key} must be a non-empty string`);
    }
    query[key] = value;
  }

  const requested = options.validation ?? 'crc32c';
  if (!(VALIDATIONS as unknown[]).includes(requested)) {
    throw new InvalidArgumentError(
      `validation must be 'crc32c', 'md5', 'both' or 'none' (false means 'none'), got ${JSON.stringify(requested)}`,
    );
  }
  const validation = requested === 'none' ? false : requested;
  if (options.authClient !== undefined && typeof options.authClient?.request !== 'function') {
    throw new InvalidArgumentError('authClient must have a request(options) method (e.g. a GoogleAuth instance)');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('signal must be an AbortSignal');
  }

  const size = options.size;
  if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)) {
    throw new InvalidArgumentError(`size must be a non-negative integer number of bytes, got ${String(size)}`);
  }
  if (size !== undefined && resume !== undefined && size < resume.bytesCommitted) {
    throw new InvalidArgumentError(`size ${size} is less than the ${resume.bytesCommitted} bytes the checkpoint's session already holds`);
  }

  const sourceStart = options.sourceStart ?? 'checkpoint';
  if (sourceStart !== 'checkpoint' && sourceStart !== 'beginning') {
    throw new InvalidArgumentError(`sourceStart must be 'checkpoint' or 'beginning', got ${String(sourceStart)}`);
  }
  if (resume) {
    if (resume.bucket !== options.bucket || resume.name !== options.name) {
      throw new InvalidArgumentError(
        `resume: the checkpoint is for gs://${resume.bucket}/${resume.name}, not gs://${options.bucket}/${options.name}`,
      );
    }
    if (new URL(resume.uploadUri).origin !== new URL(apiEndpoint).origin) {
      throw new InvalidArgumentError('resume: the checkpoint session is on another origin than apiEndpoint');
    }
    if (sourceStart === 'checkpoint' && (validation === 'md5' || validation === 'both')) {
      throw new InvalidArgumentError(
        "resume: MD5 cannot be continued from a checkpoint; use validation 'crc32c' or sourceStart 'beginning'",
      );
    }
    if (sourceStart === 'beginning' && resume.bytesCommitted > 0 && resume.crc32c === undefined) {
      // Without it the source's first bytes cannot be checked against the session's, and a different source
      // would be spliced onto them.
      throw new InvalidArgumentError(
        `resume: the checkpoint has no crc32c state, so the source's first ${resume.bytesCommitted} bytes cannot be ` +
          'checked against the bytes the session holds; start a new upload (checkpoints of this version always carry it)',
      );
    }
    if (sourceStart === 'checkpoint' && validation !== false && resume.crc32c === undefined) {
      throw new InvalidArgumentError("resume: the checkpoint has no crc32c state; use sourceStart 'beginning' or validation false");
    }
  }

  const parallel = normalizeParallel(options, validation, parallelResume, resume);

  return Object.freeze({
    ...parallel,
    bucket: options.bucket,
    name: options.name,
    size,
    chunkSize,
    bufferChunks,
    memory: options.memory ?? MemoryPool.default,
    maxUncommittedMs: normalizeMaxUncommitted(options.maxUncommittedMs),
    adaptiveRequests: options.adaptiveRequests ?? true,
    retainWrites: options.retainWrites ?? false,
    checksumWorker: options.checksumWorker === true && availableParallelism() >= 2,
    resource: Object.freeze(resource),
    apiEndpoint,
    isEmulator,
    requestHeaders: normalizeRequestHeaders(options.requestHeaders),
    authClient: options.authClient,
    query: Object.freeze(query),
    validation,
    retry: normalizeRetry(options.retry),
    signal: options.signal,
    resume,
    sourceOffset: sourceStart !== 'checkpoint' ? 0 : resume ? resume.bytesCommitted : parallelResume ? parallelResume.bytesCommitted : 0,
  });
}

/** `parallel`, `partSize`, `partPrefix`, and what they rule out (see the options' doc comments). */
function normalizeParallel(
  options: GcsWriteStreamOptions,
  validation: Validation,
  parallelResume: ParallelCheckpoint | undefined,
  resume: UploadCheckpoint | undefined,
): Pick<NormalizedOptions, 'parallel' | 'partSize' | 'partPrefix' | 'parallelResume'> {
  const parallel = positiveInt('parallel', options.parallel ?? 1, 1);
  const partSize = options.partSize ?? parallelResume?.partSize ?? DEFAULT_PART_SIZE;
  if (typeof partSize !== 'number' || !Number.isSafeInteger(partSize) || partSize < CHUNK_ALIGNMENT || partSize % CHUNK_ALIGNMENT !== 0) {
    throw new InvalidArgumentError(`partSize must be a positive multiple of ${CHUNK_ALIGNMENT} bytes, got ${String(partSize)}`);
  }
  if (!Number.isSafeInteger((parallel + 1) * partSize)) {
    throw new InvalidArgumentError(`(parallel + 1) × partSize must be a safe integer, got (${parallel} + 1) × ${partSize}`);
  }
  const partPrefix = options.partPrefix ?? parallelResume?.partPrefix ?? DEFAULT_PART_PREFIX;
  if (typeof partPrefix !== 'string') throw new InvalidArgumentError('partPrefix must be a string');
  // The longest part name this prefix leads to must be a valid object name.
  try {
    validateObjectName(`${partPrefix}${'x'.repeat(43)}/${Number.MAX_SAFE_INTEGER}`);
  } catch (error) {
    throw new InvalidArgumentError(
      `partPrefix ${JSON.stringify(partPrefix)} does not lead to valid part names: ${(error as Error).message}`,
    );
  }
  if (parallel > 1) {
    for (const key of ['ifGenerationNotMatch', 'ifMetagenerationNotMatch'] as const) {
      if (options[key] !== undefined) {
        throw new InvalidArgumentError(
          `${key} cannot hold with parallel > 1: a compose checks only ifGenerationMatch and ifMetagenerationMatch`,
        );
      }
    }
    if (validation === 'md5' || validation === 'both') {
      throw new InvalidArgumentError(
        `validation '${validation}' cannot hold with parallel > 1: a composite object has no MD5 hash; use 'crc32c'`,
      );
    }
    if (options.maxUncommittedMs !== undefined) {
      throw new InvalidArgumentError(
        'maxUncommittedMs cannot hold with parallel > 1: nothing is visible before the compose at end(); leave it unset',
      );
    }
    if (resume !== undefined) {
      throw new InvalidArgumentError('resume: the checkpoint is of a single session, which parallel > 1 cannot continue');
    }
  }
  if (parallelResume !== undefined) {
    if (parallel < 2) throw new InvalidArgumentError('resume: the checkpoint is of a parallel upload: pass parallel > 1');
    if (parallelResume.bucket !== options.bucket || parallelResume.name !== options.name) {
      throw new InvalidArgumentError(
        `resume: the checkpoint is for gs://${parallelResume.bucket}/${parallelResume.name}, not gs://${String(options.bucket)}/${String(options.name)}`,
      );
    }
    if (parallelResume.partSize !== partSize || parallelResume.partPrefix !== partPrefix) {
      throw new InvalidArgumentError('resume: the checkpoint was taken with another partSize or partPrefix; pass the same ones');
    }
  }
  return { parallel, partSize, partPrefix, parallelResume };
}
