/**
 * `ResumableSession`: the JSON API resumable upload protocol and nothing else. It builds requests and sends them
 * through the {@link AuthorizedClient} with a per-request deadline; responses.ts turns the answers into typed
 * results or typed errors. It holds no upload state beyond the session URI.
 */
import { getHeader, type AuthorizedClient, type HttpResponse } from '../core/auth.js';
import { ProtocolError } from '../core/errors.js';
import { bodyOf } from '../core/gather-body.js';
import type { ObjectMetadata } from '../core/options.js';
import { parseObject, parseState, statusError, type CancelOutcome, type ObjectResource, type SessionState } from '../core/responses.js';
import { sendRequest, USER_AGENT, type SendRequest } from '../core/send-request.js';

/** Where and what to upload; fixed for the life of a session. */
export interface SessionTarget {
  apiEndpoint: string;
  bucket: string;
  name: string;
  resource: Readonly<ObjectMetadata>;
  query: Readonly<Record<string, string>>;
  /** The object's size, when declared up front. */
  size?: number | undefined;
  /** Extra headers for every request (the protocol's own win). */
  requestHeaders?: Readonly<Record<string, string>>;
}

/** The wire protocol of one resumable upload session. */
export class ResumableSession {
  readonly #client: AuthorizedClient;
  readonly #target: SessionTarget;
  readonly #timeoutMs: number;
  #uri: string | undefined;

  constructor(client: AuthorizedClient, target: SessionTarget, timeoutMs: number, uri?: string) {
    this.#client = client;
    this.#target = target;
    this.#timeoutMs = timeoutMs;
    this.#uri = uri;
  }

  /** The session URI once opened (a bearer capability: do not log it). */
  get uri(): string | undefined {
    return this.#uri;
  }

  /** Starts a session: POST the object resource, read the session URI from `Location`. */
  async open(signal: AbortSignal, onBodySent?: () => void): Promise<string> {
    const { apiEndpoint, bucket, name, resource, query } = this.#target;
    const url = new URL(`${apiEndpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`);
    url.searchParams.set('uploadType', 'resumable');
    url.searchParams.set('name', name);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json; charset=UTF-8',
      'User-Agent': USER_AGENT,
    };
    if (typeof resource.contentType === 'string') headers['X-Upload-Content-Type'] = resource.contentType;
    if (this.#target.size !== undefined) headers['X-Upload-Content-Length'] = String(this.#target.size);
    const what = 'Opening the upload session';
    const res = await this.#send(
      what,
      { url: url.toString(), method: 'POST', headers, data: JSON.stringify({ ...resource, name }), onBodySent },
      signal,
    );
    if (res.status !== 200 && res.status !== 201) throw statusError(what, res, 'endpoint');
    const location = getHeader(res.headers, 'location');
    if (!location) throw new ProtocolError({ kind: 'no-location' }, res.status);
    let sessionUrl: URL;
    try {
      sessionUrl = new URL(location);
    } catch {
      throw new ProtocolError({ kind: 'bad-location' }, res.status);
    }
    const endpoint = new URL(apiEndpoint);
    if (sessionUrl.origin !== endpoint.origin) {
      // Data and credentials go only where the user pointed us; a session elsewhere is never followed.
      throw new ProtocolError(
        { kind: 'foreign-origin', sessionOrigin: `${sessionUrl.protocol}//${sessionUrl.host}`, endpointOrigin: endpoint.origin },
        res.status,
      );
    }
    this.#uri = sessionUrl.toString();
    return this.#uri;
  }

  /**
   * Uploads `pieces` (one body, in order) at `offset`. With `total` the request ends the object (and carries
   * `hash`, the `X-Goog-Hash` value). Returns what the server committed, or the object if the upload completed.
   */
  async put(
    offset: number,
    pieces: readonly Uint8Array[],
    total: number | undefined,
    hash: string | undefined,
    signal: AbortSignal,
    onBodySent?: () => void,
  ): Promise<SessionState> {
    const body = bodyOf(pieces);
    const end = offset + body.length - 1;
    // A declared size is said in every Content-Range of the session: GCS completes the upload once that many bytes
    // have arrived, whatever a request says, so the header should agree with what will happen.
    const rangeTotal = total ?? this.#target.size;
    const range = body.length === 0 ? `bytes */${rangeTotal ?? '*'}` : `bytes ${offset}-${end}/${rangeTotal ?? '*'}`;
    const headers: Record<string, string> = { 'Content-Range': range, 'User-Agent': USER_AGENT };
    if (total !== undefined && hash !== undefined) headers['X-Goog-Hash'] = hash;
    const what =
      total === undefined
        ? `Uploading bytes ${offset}-${end}`
        : body.length === 0
          ? `Finalizing the upload at ${total} bytes`
          : `Uploading the final bytes ${offset}-${end} of ${total}`;
    const res = await this.#send(what, { url: this.#sessionUri(), method: 'PUT', headers, data: body, onBodySent }, signal);
    return parseState(what, res, total);
  }

  /** Asks how many bytes are committed (`Content-Range: bytes *\/*`). */
  async query(signal: AbortSignal): Promise<SessionState> {
    const what = 'Querying the upload status';
    const res = await this.#send(
      what,
      {
        url: this.#sessionUri(),
        method: 'PUT',
        headers: { 'Content-Range': 'bytes */*', 'User-Agent': USER_AGENT },
        data: Buffer.alloc(0),
      },
      signal,
    );
    return parseState(what, res);
  }

  /**
   * Cancels the session (DELETE). `cancelled`: GCS confirmed (499), nothing can be finalized any more; `gone`: the
   * session no longer exists (404/410); `completed`: the upload had already finalized this object; `unknown`:
   * any other answer.
   */
  async cancel(signal: AbortSignal): Promise<CancelOutcome> {
    const res = await this.#send(
      'Cancelling the session',
      {
        url: this.#sessionUri(),
        method: 'DELETE',
        headers: { 'User-Agent': USER_AGENT },
      },
      signal,
    );
    if (res.status === 499 || res.status === 204) return { kind: 'cancelled' };
    if (res.status === 404 || res.status === 410) return { kind: 'gone' };
    if (res.status === 200 || res.status === 201) {
      try {
        return { kind: 'completed', object: parseObject(res) };
      } catch {
        return { kind: 'unknown' };
      }
    }
    return { kind: 'unknown' };
  }

  /** The live object's metadata, or undefined if there is none (404). */
  async getObject(signal: AbortSignal): Promise<ObjectResource | undefined> {
    const what = 'Reading the object metadata';
    const res = await this.#send(what, { url: this.#objectUrl(), method: 'GET', headers: { 'User-Agent': USER_AGENT } }, signal);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw statusError(what, res, 'endpoint');
    return parseObject(res);
  }

  /** Deletes one generation of the target object (used to withdraw a generation that failed verification). */
  async deleteObject(generation: string, signal: AbortSignal): Promise<boolean> {
    const url = this.#objectUrl({ generation });
    const res = await this.#send(
      'Deleting the corrupt generation',
      { url, method: 'DELETE', headers: { 'User-Agent': USER_AGENT } },
      signal,
    );
    return res.status === 204 || res.status === 200 || res.status === 404;
  }

  /** The JSON API URL of the target object (with `userProject` when set, and any `extra` parameters). */
  #objectUrl(extra: Record<string, string> = {}): string {
    const { apiEndpoint, bucket, name, query } = this.#target;
    const url = new URL(`${apiEndpoint}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    if (query.userProject !== undefined) url.searchParams.set('userProject', query.userProject);
    return url.toString();
  }

  #sessionUri(): string {
    if (this.#uri === undefined) throw new Error('session not opened');
    return this.#uri;
  }

  /** One request with a deadline; failures without a response become NetworkError or RequestTimeoutError. */
  #send(what: string, request: SendRequest, signal: AbortSignal): Promise<HttpResponse> {
    const context = { client: this.#client, timeoutMs: this.#timeoutMs, requestHeaders: this.#target.requestHeaders, secretUri: this.#uri };
    return sendRequest(context, what, request, signal);
  }
}
