/**
 * What every storage v2 stream needs before its first message, shared by appendable writes and reads: the endpoint
 * (and whether it is an emulator: plain-text, no credentials), the channel, and the call metadata (the caller's
 * extra headers, `x-goog-request-params` with the bucket and a redirect's routing token, and credentials).
 */
import type * as Grpc from '@grpc/grpc-js';
import { isNetworkFailure } from '../core/error-text.js';
import { AuthenticationError, GcsUploadError, HttpStatusError, InvalidArgumentError, NetworkError } from '../core/errors.js';
import { isTransientStatus } from '../core/retry.js';
import { loadStorageGrpc } from './grpc-stack.js';
import { bucketResourceName } from './wire-types.js';

/** Google's gRPC endpoint for Cloud Storage. */
export const DEFAULT_GRPC_ENDPOINT = 'storage.googleapis.com:443';

/** Supplies credentials as request metadata; google-auth-library's `GoogleAuth` and `AuthClient` satisfy it. */
export interface GrpcAuthClient {
  getRequestHeaders(url?: string): Promise<Headers | Record<string, string>>;
}

const ENDPOINT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;
const GOOGLE_HOST = /^(?:[A-Za-z0-9-]+\.)*googleapis\.com:\d+$/i;

/**
 * The endpoint to use: `given`, else `STORAGE_EMULATOR_HOST_GRPC` (an emulator), else Google's. `insecure` (plain
 * text, no credentials unless an `authClient` is given) for an emulator: from the environment, on loopback, or any
 * host but Google's while an emulator variable is set, as the JSON path treats STORAGE_EMULATOR_HOST. Throws
 * `InvalidArgumentError` when it is not `host:port`, or when only the JSON emulator variable is set: going to Google
 * with real credentials while the user runs against an emulator would be a surprise at best, and guessing the
 * emulator's gRPC port a wrong guess (storage-testbench serves gRPC apart).
 */
export function resolveGrpcEndpoint(given: unknown, env: NodeJS.ProcessEnv): { grpcEndpoint: string; insecure: boolean } {
  const fromEnv = given === undefined ? env.STORAGE_EMULATOR_HOST_GRPC?.replace(/^https?:\/\//, '') || undefined : undefined;
  const jsonEmulator = env.STORAGE_EMULATOR_HOST || undefined;
  if (given === undefined && fromEnv === undefined && jsonEmulator !== undefined) {
    throw new InvalidArgumentError(
      `STORAGE_EMULATOR_HOST is set (${JSON.stringify(jsonEmulator.slice(0, 100))}), but append and read streams speak gRPC, which an ` +
        'emulator serves on a port of its own: set STORAGE_EMULATOR_HOST_GRPC (or the grpcEndpoint option) to its gRPC host:port',
    );
  }
  const grpcEndpoint = given ?? fromEnv ?? DEFAULT_GRPC_ENDPOINT;
  if (typeof grpcEndpoint !== 'string' || !ENDPOINT.test(grpcEndpoint)) {
    throw new InvalidArgumentError(`grpcEndpoint must be host:port, got ${JSON.stringify(grpcEndpoint)}`);
  }
  const emulating = jsonEmulator !== undefined || (env.STORAGE_EMULATOR_HOST_GRPC || undefined) !== undefined;
  return { grpcEndpoint, insecure: fromEnv !== undefined || LOOPBACK.test(grpcEndpoint) || (emulating && !GOOGLE_HOST.test(grpcEndpoint)) };
}

/** Checks `authClient` when given; throws `InvalidArgumentError` otherwise. */
export function validateGrpcAuthClient(authClient: GrpcAuthClient | undefined): GrpcAuthClient | undefined {
  if (authClient !== undefined && typeof (authClient as Partial<GrpcAuthClient> | null)?.getRequestHeaders !== 'function') {
    throw new InvalidArgumentError('authClient must have getRequestHeaders() (a google-auth-library client)');
  }
  return authClient;
}

/** Checks that `value` is an object of strings; throws `InvalidArgumentError` naming `field` otherwise. */
export function stringRecord(field: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`${field} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`${field}.${key} must be a string`);
    out[key] = v;
  }
  return out;
}

/** `requestHeaders` as text metadata, frozen; throws `InvalidArgumentError` on a key gRPC cannot carry as text. */
export function normalizeRequestHeaders(value: unknown): Readonly<Record<string, string>> {
  const headers = Object.freeze(stringRecord('requestHeaders', value ?? {}));
  for (const key of Object.keys(headers)) {
    if (!/^[a-z0-9_.-]+$/i.test(key) || key.toLowerCase().endsWith('-bin') || key.toLowerCase().startsWith('grpc-')) {
      throw new InvalidArgumentError(`requestHeaders: ${JSON.stringify(key)} is not a valid text metadata key`);
    }
  }
  return headers;
}

/** Where and how a stream connects. */
export interface GrpcTarget {
  readonly grpcEndpoint: string;
  readonly insecure: boolean;
  readonly authClient: GrpcAuthClient | undefined;
  readonly requestHeaders: Readonly<Record<string, string>>;
}

/** A `google.storage.v2.Storage` client (one HTTP/2 channel) for `target`. */
export function createStorageClient(target: GrpcTarget): Grpc.Client {
  const { grpc, StorageClient } = loadStorageGrpc();
  return new StorageClient(target.grpcEndpoint, target.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(), {
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // A read message carries up to 2 MiB of content plus its framing.
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
}

/**
 * The metadata of one stream on `bucket`: the caller's headers and `x-goog-request-params` (the bucket, and the
 * routing token a redirect gave, which GCS wants there verbatim). Synchronous, so that a caller without credentials
 * to add opens its stream in the same tick as it decided to.
 */
export function streamMetadata(target: GrpcTarget, bucket: string, routingToken: string | undefined): Grpc.Metadata {
  const { grpc } = loadStorageGrpc();
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(target.requestHeaders)) metadata.set(key, value);
  const params = new URLSearchParams({ bucket: bucketResourceName(bucket) });
  if (routingToken !== undefined) params.set('routing_token', routingToken);
  metadata.set('x-goog-request-params', params.toString());
  return metadata;
}

/**
 * Adds the credentials of `target` to `metadata`; `what` names the operation in errors. A failure to obtain them is
 * reported as the JSON path reports it: network trouble on the way to a token endpoint, or its 429/5xx, is retried;
 * anything else (no credentials found, a key file that cannot be read, a refused grant) is `AuthenticationError`
 * ('unobtainable'), at once, with its cause.
 */
export async function authorizeMetadata(target: GrpcTarget, metadata: Grpc.Metadata, what: string): Promise<void> {
  const auth: GrpcAuthClient = target.authClient ?? (await defaultGrpcAuth());
  let headers: Headers | Record<string, string>;
  try {
    headers = await auth.getRequestHeaders(`https://${target.grpcEndpoint.replace(/:\d+$/, '')}/`);
  } catch (error) {
    throw credentialsFailure(what, error);
  }
  const entries =
    typeof (headers as Headers).forEach === 'function' && typeof (headers as Headers).get === 'function'
      ? [...(headers as Headers).entries()]
      : Object.entries(headers);
  for (const [key, value] of entries) metadata.set(key.toLowerCase(), String(value));
}

/** What a failed `getRequestHeaders()` becomes (see `authorizeMetadata`). */
function credentialsFailure(what: string, error: unknown): GcsUploadError {
  if (error instanceof GcsUploadError) return error;
  const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
  if (typeof status === 'number' && isTransientStatus(status)) {
    return new HttpStatusError(`${what}: obtaining credentials`, status, undefined, { transient: true });
  }
  if (typeof status !== 'number' && isNetworkFailure(error)) return new NetworkError(`${what}: obtaining credentials`, error);
  return new AuthenticationError(what, { reason: 'unobtainable', cause: error });
}

let googleAuth: Promise<GrpcAuthClient> | undefined;

/** google-auth-library's Application Default Credentials, loaded on first use. */
function defaultGrpcAuth(): Promise<GrpcAuthClient> {
  googleAuth ??= import('google-auth-library').then(
    ({ GoogleAuth }) => new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/devstorage.read_write'] }) as unknown as GrpcAuthClient,
  );
  return googleAuth;
}
