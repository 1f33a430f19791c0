/**
 * Options of {@link createGcsReadStream}: what users give and the normalized, frozen form the reader works from.
 * Everything is checked here, before any connection is made (and before the gRPC stack is loaded).
 */
import { InvalidArgumentError } from '../core/errors.js';
import { normalizeRetry } from '../core/options.js';
import type { RetryOptions, RetrySettings } from '../core/retry.js';
import { validateBucketName, validateObjectName } from '../core/validate.js';
import {
  normalizeRequestHeaders,
  resolveGrpcEndpoint,
  validateGrpcAuthClient,
  type GrpcAuthClient,
  type GrpcTarget,
} from '../grpc/grpc-connection.js';

/** Default `pollMs`: how often a follower that caught up asks for new bytes. */
export const DEFAULT_POLL_MS = 500;

/** Options of {@link createGcsReadStream}. */
export interface GcsReadStreamOptions {
  /** Bucket name. */
  bucket: string;
  /** Object name. */
  name: string;
  /** Read this generation (decimal string); default: the live generation when the stream opens. */
  generation?: string;
  /** First byte to read; default 0. */
  start?: number;
  /**
   * Keep reading as an unfinalized appendable object grows, until it is finalized and every byte was delivered.
   * Default false: read the bytes the object holds when the stream opens, then end.
   */
  follow?: boolean;
  /** With `follow`: how often to ask for new bytes once caught up, in milliseconds; default 500. */
  pollMs?: number;
  /**
   * `host:port` of the gRPC endpoint. Default: `STORAGE_EMULATOR_HOST_GRPC` when set (an emulator: plain-text, no
   * credentials), else `storage.googleapis.com:443` over TLS with credentials. A loopback host is always plain-text.
   */
  grpcEndpoint?: string;
  /** Credentials for Google's endpoint; default google-auth-library's Application Default Credentials. */
  authClient?: GrpcAuthClient;
  /** Aborts the read: the stream is destroyed with `UploadAbortedError`. */
  signal?: AbortSignal;
  /** Retry settings, as on the write streams (the budget resets whenever bytes are delivered). */
  retry?: RetryOptions;
  /** Extra gRPC metadata sent with every stream (e.g. `x-goog-user-project`, tracing). */
  requestHeaders?: Record<string, string>;
}

/** The options a reader works from. */
export interface NormalizedReadOptions extends GrpcTarget {
  readonly bucket: string;
  readonly name: string;
  readonly generation: string | undefined;
  readonly start: number;
  readonly follow: boolean;
  readonly pollMs: number;
  readonly retry: Readonly<RetrySettings>;
  readonly signal: AbortSignal | undefined;
}

/** Validates and normalizes `given`; throws `InvalidArgumentError` on the first problem. */
export function normalizeReadOptions(given: GcsReadStreamOptions, env: NodeJS.ProcessEnv = process.env): NormalizedReadOptions {
  if (typeof given !== 'object' || given === null) throw new InvalidArgumentError('options must be an object');
  const { grpcEndpoint, insecure } = resolveGrpcEndpoint(given.grpcEndpoint, env);
  validateBucketName(given.bucket, !insecure);
  validateObjectName(given.name);
  const generation = given.generation === undefined ? undefined : String(given.generation);
  if (generation !== undefined && !/^[1-9]\d*$/.test(generation))
    throw new InvalidArgumentError(`generation must be a generation number, got ${JSON.stringify(given.generation)}`);
  const start = given.start ?? 0;
  if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0)
    throw new InvalidArgumentError(`start must be a non-negative integer, got ${String(start)}`);
  if (given.follow !== undefined && typeof given.follow !== 'boolean') throw new InvalidArgumentError('follow must be a boolean');
  const pollMs = given.pollMs ?? DEFAULT_POLL_MS;
  if (typeof pollMs !== 'number' || !Number.isFinite(pollMs) || pollMs < 0)
    throw new InvalidArgumentError(`pollMs must be a non-negative number of milliseconds, got ${String(pollMs)}`);
  if (given.signal !== undefined && !(given.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  return Object.freeze({
    bucket: given.bucket,
    name: given.name,
    generation,
    start,
    follow: given.follow ?? false,
    pollMs,
    grpcEndpoint,
    insecure,
    authClient: validateGrpcAuthClient(given.authClient),
    retry: normalizeRetry(given.retry),
    signal: given.signal,
    requestHeaders: normalizeRequestHeaders(given.requestHeaders),
  });
}
