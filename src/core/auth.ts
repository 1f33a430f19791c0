/**
 * The I/O boundary. Every HTTP request goes through an {@link AuthorizedClient}: google-auth-library's
 * `GoogleAuth` and `AuthClient`s satisfy it (they add credentials and refresh tokens once on 401), and so does a
 * plain gaxios `Gaxios` instance for emulators. Users can wrap one to add headers, proxies or tracing.
 */
import type { Readable } from 'node:stream';
import { httpAdapter } from './transport.js';

/**
 * The request options this library passes to {@link AuthorizedClient.request}: gaxios options. A client given as
 * `authClient` gets them with `adapter` added, the transport of `transport.ts`, so that gaxios sends bodies as they
 * are. A wrapper may pass on only some of them: uploads still work (through gaxios's own transport then).
 */
export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers: Record<string, string>;
  /**
   * Request body: views of the window's blocks for uploads, one Uint8Array or, for several, a Readable of them
   * (a `GatherBody`, whose `pieces` the library's transport writes as they are).
   */
  data?: Uint8Array | string | Readable;
  /**
   * `'text'` for the protocol's requests: the library parses bodies itself. `'arraybuffer'` only for object media
   * (`gcs-stream cat`): the body is then a Buffer.
   */
  responseType: 'text' | 'arraybuffer';
  /** Accepts every status but 401, so that auth clients still get to refresh a token once. */
  validateStatus: (status: number) => boolean;
  /** Always false: retries are this library's job. */
  retry: false;
  /** Never follow redirects: a 308 is the protocol's "incomplete", not a redirect. */
  redirect: 'manual';
  signal: AbortSignal;
  /**
   * Called by the library's transport once the whole body has been handed to the OS; the time from there to the
   * answer sizes later requests. Wrappers pass it on (spread the options); without it requests keep to one chunk.
   */
  onBodySent?: () => void;
  /**
   * Called by the library's transport when it starts sending: the auth client had credentials for the request. A
   * failure before it that is not a network one is the auth client's own (an unreadable key file): not retried.
   */
  onSend?: () => void;
}

/** Response headers as gaxios 7 and 8 (`Headers`) or gaxios 6 (a plain object) expose them. */
export type HeadersLike = { get(name: string): string | null } | Record<string, unknown>;

/** What the library reads from a response. */
export interface HttpResponse {
  status: number;
  headers: HeadersLike;
  data: unknown;
}

/** Anything that can perform an authorized HTTP request: `GoogleAuth`, an `AuthClient`, a `Gaxios`. */
export interface AuthorizedClient {
  request(options: HttpRequest): Promise<HttpResponse>;
}

/** Scope needed to create objects. */
export const READ_WRITE_SCOPE = 'https://www.googleapis.com/auth/devstorage.read_write';

/** An emulator needs no credentials: requests go straight to the transport. */
export const unauthenticatedClient: AuthorizedClient = {
  request: (options) => httpAdapter(options),
};

/**
 * google-auth-library's `GoogleAuth` (Application Default Credentials), loaded on first use: the library and its
 * dependencies cost ~12 MiB of memory that emulator users and users with their own client never need.
 */
class LazyGoogleAuth implements AuthorizedClient {
  #client: Promise<AuthorizedClient> | undefined;

  request(options: HttpRequest): Promise<HttpResponse> {
    this.#client ??= import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth({ scopes: [READ_WRITE_SCOPE] }));
    return this.#client.then((client) => client.request(options));
  }
}

/** The client used when none was given: credentials from the environment, or none for an emulator. */
export function defaultAuthClient(isEmulator: boolean): AuthorizedClient {
  return isEmulator ? unauthenticatedClient : withTransport(new LazyGoogleAuth());
}

/**
 * `client` (a user's, or google-auth-library's), sending through this library's transport: gaxios calls the
 * `adapter` option instead of its own fetch. The client itself is not changed.
 */
export function withTransport(client: AuthorizedClient): AuthorizedClient {
  return { request: (options) => client.request({ ...options, adapter: httpAdapter } as HttpRequest) };
}

/** The client an upload talks through: the user's `authClient` with the transport, or the default. */
export function clientFor(options: { readonly authClient: AuthorizedClient | undefined; readonly isEmulator: boolean }): AuthorizedClient {
  return options.authClient === undefined ? defaultAuthClient(options.isEmulator) : withTransport(options.authClient);
}

/** Reads one response header whatever the header container's shape. */
export function getHeader(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== lower) continue;
    if (Array.isArray(value)) return value.join(', ');
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  }
  return undefined;
}
