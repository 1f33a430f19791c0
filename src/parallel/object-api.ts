/**
 * `ObjectApi`: the JSON API calls of a composite upload besides the parts themselves (compose, object delete,
 * object listing, object metadata). Every request goes through the {@link AuthorizedClient} with the same transport,
 * per-request deadline, request headers and retry policy as a resumable session (`sendRequest`, `RetryBudget`):
 * transient failures (network errors, 408, 429, 5xx) are retried with backoff, everything else is a typed error.
 */
import { clientFor, type AuthorizedClient, type HttpResponse } from '../core/auth.js';
import { ComposeSourceNotFoundError, GcsUploadError, InvalidArgumentError, ProtocolError } from '../core/errors.js';
import type { NormalizedOptions, ObjectMetadata } from '../core/options.js';
import { parseObject, serverMessage, statusError, type ObjectResource } from '../core/responses.js';
import { RetryBudget, type RetryEvent, type RetrySettings } from '../core/retry.js';
import { sendRequest, USER_AGENT, type RequestContext, type SendRequest } from '../core/send-request.js';

/** GCS's limit on the sources of one compose request. */
export const MAX_COMPOSE_SOURCES = 32;

/** What every call of an {@link ObjectApi} shares. */
export interface ObjectApiSettings {
  /** Performs the requests (adds credentials); give it the library's transport (`clientFor`, `withTransport`). */
  readonly client: AuthorizedClient;
  /** The JSON API endpoint, without a trailing slash. */
  readonly apiEndpoint: string;
  /** Project billed for requester-pays buckets: sent as `userProject` on every request. */
  readonly userProject?: string | undefined;
  /** Extra headers of every request. */
  readonly requestHeaders?: Readonly<Record<string, string>> | undefined;
  /** Retry policy and per-request deadline (`stallTimeoutMs`). Each call has its own attempt budget. */
  readonly retry: Readonly<RetrySettings>;
  /** Told before each retry's backoff (e.g. to emit the stream's `retry` event). */
  readonly onRetry?: ((event: RetryEvent) => void) | undefined;
}

/** One source of a compose: an object of the destination's bucket, optionally one generation of it. */
export interface ComposeSource {
  readonly name: string;
  /** Compose this generation (a 404 if it is no longer live); default: the live one. */
  readonly generation?: string | number | undefined;
}

/** Preconditions a compose checks on its destination (the only two the compose call takes). */
export interface ComposePreconditions {
  /** Only compose if the destination's live generation is this one; `0`: only if there is no live object. */
  readonly ifGenerationMatch?: string | number | undefined;
  /** Only compose if the destination's live metageneration is this one. */
  readonly ifMetagenerationMatch?: string | number | undefined;
}

/** A compose call: `sources` concatenated, in order, into `bucket/name`. */
export interface ComposeRequest {
  readonly bucket: string;
  /** The destination object. */
  readonly name: string;
  /** 1 to 32 objects of `bucket`, in order; a composite may be one (composing in tiers). */
  readonly sources: readonly ComposeSource[];
  /** The destination's resource (contentType, cacheControl, custom `metadata`, ...): what the result carries. */
  readonly destination?: Readonly<ObjectMetadata> | undefined;
  readonly preconditions?: ComposePreconditions | undefined;
  /** Cloud KMS key for the destination (the `kmsKeyName` query parameter). */
  readonly kmsKeyName?: string | undefined;
  /** Predefined ACL of the destination (`destinationPredefinedAcl`). */
  readonly predefinedAcl?: string | undefined;
  /**
   * What the result will be, if known (its size and base64 CRC32C, from the sources'): when an attempt may have
   * composed although its answer was lost and a retry then fails for good (with an `ifGenerationMatch`, a 412
   * against that attempt's own result), the live destination is read, and returned as the result if it matches
   * this. Without it such a failure is an error.
   */
  readonly expect?: { readonly size: number; readonly crc32c: string } | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The object resource of a compose's result. */
export interface ComposedObject extends ObjectResource {
  /** How many non-composite objects the composite is made of (GCS caps it at 1024). */
  componentCount?: number;
}

/** A delete of one object (one generation of it, if given). */
export interface DeleteRequest {
  readonly bucket: string;
  readonly name: string;
  /** Delete this generation only; default: the live one. */
  readonly generation?: string | number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** What a delete found: `deleted`, or `gone` (404: there was no such object, or it was already deleted). */
export type DeleteOutcome = 'deleted' | 'gone';

/** A listing of the objects of a bucket whose names start with `prefix`. */
export interface ListRequest {
  readonly bucket: string;
  /** Only names starting with this; default: every object. */
  readonly prefix?: string | undefined;
  /** Largest page to ask for; default: the server's (1000 on GCS). */
  readonly maxResults?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** An object as a listing shows it. */
export interface ListedObject {
  readonly bucket: string;
  readonly name: string;
  readonly generation: string;
  /** Bytes. */
  readonly size: number;
  /** RFC 3339 creation time of this generation. */
  readonly timeCreated: string;
  /** Base64 big-endian CRC32C, when the server gave one. */
  readonly crc32c: string | undefined;
  /** Components of a composite; undefined for an ordinary object. */
  readonly componentCount: number | undefined;
}

/** One page of a listing. */
export interface ObjectListPage {
  readonly items: readonly ListedObject[];
  /** The token of the next page; undefined on the last one. */
  readonly nextPageToken: string | undefined;
}

/** Compose, delete, list and read object metadata over the JSON API, with retries. */
export class ObjectApi {
  readonly #settings: ObjectApiSettings;
  readonly #context: RequestContext;

  constructor(settings: ObjectApiSettings) {
    this.#settings = settings;
    this.#context = { client: settings.client, timeoutMs: settings.retry.stallTimeoutMs, requestHeaders: settings.requestHeaders };
  }

  /**
   * The API of a stream's normalized options: their endpoint, `userProject`, request headers and retry policy;
   * through `client` if given (share the stream's, so that credentials are obtained once), else `clientFor(options)`.
   */
  static fromOptions(options: NormalizedOptions, client?: AuthorizedClient, onRetry?: (event: RetryEvent) => void): ObjectApi {
    return new ObjectApi({
      client: client ?? clientFor(options),
      apiEndpoint: options.apiEndpoint,
      userProject: options.query.userProject,
      requestHeaders: options.requestHeaders,
      retry: options.retry,
      onRetry,
    });
  }

  /**
   * Composes `sources` into `bucket/name` and returns the result's resource (`componentCount`, `crc32c`, no
   * `md5Hash`). Retried on transient failures (safe: the sources do not change). A 412 is `PreconditionFailedError`,
   * a 404 `ComposeSourceNotFoundError` (naming the source when the answer does); more than 32 sources, or none,
   * `InvalidArgumentError` before anything is sent.
   */
  async composeObject(request: ComposeRequest): Promise<ComposedObject> {
    const { bucket, name, sources } = request;
    if (sources.length === 0 || sources.length > MAX_COMPOSE_SOURCES) {
      throw new InvalidArgumentError(`a compose takes 1 to ${MAX_COMPOSE_SOURCES} sources, got ${sources.length}`);
    }
    const url = this.#objectUrl(bucket, name, '/compose');
    const ifGenerationMatch = integerParam('ifGenerationMatch', request.preconditions?.ifGenerationMatch);
    const ifMetagenerationMatch = integerParam('ifMetagenerationMatch', request.preconditions?.ifMetagenerationMatch);
    if (ifGenerationMatch !== undefined) url.searchParams.set('ifGenerationMatch', ifGenerationMatch);
    if (ifMetagenerationMatch !== undefined) url.searchParams.set('ifMetagenerationMatch', ifMetagenerationMatch);
    if (request.kmsKeyName !== undefined) url.searchParams.set('kmsKeyName', request.kmsKeyName);
    if (request.predefinedAcl !== undefined) url.searchParams.set('destinationPredefinedAcl', request.predefinedAcl);
    const body = JSON.stringify({
      kind: 'storage#composeRequest',
      sourceObjects: sources.map((source) => {
        const generation = integerParam(`generation of source ${source.name}`, source.generation);
        return generation === undefined ? { name: source.name } : { name: source.name, generation };
      }),
      destination: { ...request.destination, name, bucket },
    });
    const what = `Composing gs://${bucket}/${name} from ${sources.length} source${sources.length === 1 ? '' : 's'}`;
    const expect = request.expect;
    return this.#change(
      request.signal,
      what,
      {
        url: url.toString(),
        method: 'POST',
        headers: { 'Content-Type': 'application/json; charset=UTF-8', 'User-Agent': USER_AGENT },
        data: body,
      },
      (res) => {
        if (res.status === 200) return parseObject(res);
        if (res.status === 404) throw new ComposeSourceNotFoundError(bucket, name, missingSource(res, bucket, sources), serverMessage(res));
        throw statusError(what, res, 'endpoint');
      },
      // The destination holding what the sources make up is this compose's result (a 412 against it, with
      // ifGenerationMatch, is then no failure either).
      async () => {
        if (expect === undefined) return undefined;
        const live = await this.getObject({ bucket, name, signal: request.signal });
        return live !== undefined && live.size === String(expect.size) && live.crc32c === expect.crc32c ? live : undefined;
      },
    );
  }

  /**
   * Deletes `bucket/name` (one `generation` if given). Resolves `deleted`, or `gone` when there was no such object
   * (404: already deleted, e.g. by an earlier attempt whose answer was lost): a delete is done once the object is not
   * there. Retried on transient failures.
   */
  async deleteObject(request: DeleteRequest): Promise<DeleteOutcome> {
    const { bucket, name } = request;
    const url = this.#objectUrl(bucket, name);
    const generation = integerParam('generation', request.generation);
    if (generation !== undefined) url.searchParams.set('generation', generation);
    const what = `Deleting gs://${bucket}/${name}${generation === undefined ? '' : `#${generation}`}`;
    return this.#change(
      request.signal,
      what,
      { url: url.toString(), method: 'DELETE', headers: { 'User-Agent': USER_AGENT } },
      (res): DeleteOutcome => {
        if (res.status === 204 || res.status === 200) return 'deleted';
        if (res.status === 404) return 'gone';
        throw statusError(what, res, 'endpoint');
      },
      // The object (or that generation of it) no longer there: a leftover must be one.
      async () => {
        const live = await this.getObject({ bucket, name, signal: request.signal });
        return live === undefined || (generation !== undefined && live.generation !== generation) ? 'gone' : undefined;
      },
    );
  }

  /**
   * Sends `request`, which changes an object, retried on transient failures; `answer` turns a response into the
   * result or throws. When an attempt may have been applied although its answer was lost (none came, or a 408, 429
   * or 5xx, which may follow the change) and a later attempt fails for good (a 412 against the first one's result, a
   * 403, retries spent), `afterLostAnswer` looks at the object: a result it finds replaces the error.
   */
  async #change<T>(
    signal: AbortSignal | undefined,
    what: string,
    request: SendRequest,
    answer: (res: HttpResponse) => T,
    afterLostAnswer: () => Promise<T | undefined>,
  ): Promise<T> {
    let uncertain = false;
    try {
      return await this.#withRetry(signal, async (attemptSignal) => {
        let res: HttpResponse;
        try {
          res = await sendRequest(this.#context, what, request, attemptSignal);
        } catch (error) {
          uncertain = true;
          throw error;
        }
        if (res.status >= 500 || res.status === 408 || res.status === 429) uncertain = true;
        return answer(res);
      });
    } catch (error) {
      if (!uncertain || signal?.aborted === true) throw error;
      const found = await afterLostAnswer().catch(() => undefined);
      if (found === undefined) throw error;
      return found;
    }
  }

  /** The live object's resource, or undefined if there is none (404). Retried on transient failures. */
  async getObject(request: {
    readonly bucket: string;
    readonly name: string;
    readonly signal?: AbortSignal | undefined;
  }): Promise<ComposedObject | undefined> {
    return this.#withRetry(request.signal, (signal) => this.#getObjectOnce(request.bucket, request.name, signal));
  }

  /**
   * The objects of `bucket` whose names start with `prefix`, page by page (following `nextPageToken`), in the
   * server's order (by name). Each page's request is retried on transient failures.
   */
  async *listObjects(request: ListRequest): AsyncGenerator<ObjectListPage, void, undefined> {
    const { bucket, prefix } = request;
    if (request.maxResults !== undefined && !(Number.isSafeInteger(request.maxResults) && request.maxResults > 0)) {
      throw new InvalidArgumentError(`maxResults must be a positive integer, got ${String(request.maxResults)}`);
    }
    const what = `Listing gs://${bucket}/${prefix ?? ''}*`;
    let pageToken: string | undefined;
    do {
      const url = this.#bucketUrl(bucket, '/o');
      if (prefix !== undefined && prefix !== '') url.searchParams.set('prefix', prefix);
      if (request.maxResults !== undefined) url.searchParams.set('maxResults', String(request.maxResults));
      if (pageToken !== undefined) url.searchParams.set('pageToken', pageToken);
      const page = await this.#withRetry(request.signal, async (signal) => {
        const res = await sendRequest(
          this.#context,
          what,
          { url: url.toString(), method: 'GET', headers: { 'User-Agent': USER_AGENT } },
          signal,
        );
        if (res.status !== 200) throw statusError(what, res, 'endpoint');
        return parseListing(res, bucket);
      });
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
  }

  async #getObjectOnce(bucket: string, name: string, signal: AbortSignal): Promise<ComposedObject | undefined> {
    const what = `Reading the metadata of gs://${bucket}/${name}`;
    const url = this.#objectUrl(bucket, name).toString();
    const res = await sendRequest(this.#context, what, { url, method: 'GET', headers: { 'User-Agent': USER_AGENT } }, signal);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw statusError(what, res, 'endpoint');
    return parseObject(res);
  }

  /** Runs `attempt` until it succeeds, a failure is not retryable, the budget is spent or `given` aborts. */
  async #withRetry<T>(given: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = given ?? new AbortController().signal;
    const budget = new RetryBudget(this.#settings.retry);
    for (;;) {
      try {
        return await attempt(signal);
      } catch (error) {
        if (signal.aborted || !(error instanceof GcsUploadError)) throw error;
        await budget.failed(error, signal, this.#settings.onRetry);
      }
    }
  }

  #bucketUrl(bucket: string, rest: string): URL {
    const url = new URL(`${this.#settings.apiEndpoint}/storage/v1/b/${encodeURIComponent(bucket)}${rest}`);
    if (this.#settings.userProject !== undefined) url.searchParams.set('userProject', this.#settings.userProject);
    return url;
  }

  #objectUrl(bucket: string, name: string, rest = ''): URL {
    return this.#bucketUrl(bucket, `/o/${encodeURIComponent(name)}${rest}`);
  }
}

/** A non-negative integer parameter as its decimal string, undefined when absent; InvalidArgumentError otherwise. */
function integerParam(field: string, value: string | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`${field} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return text;
}

/** The source a compose's 404 names (`bucket/name` in its message), longest name first; undefined if none. */
function missingSource(res: HttpResponse, bucket: string, sources: readonly ComposeSource[]): string | undefined {
  const message = serverMessage(res);
  if (message === undefined) return undefined;
  const names = [...new Set(sources.map((source) => source.name))].sort((a, b) => b.length - a.length);
  return names.find((name) => message.includes(`${bucket}/${name}`));
}

/** One page of a listing from its response. */
function parseListing(res: HttpResponse, bucket: string): ObjectListPage {
  let value: unknown = res.data;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new ProtocolError({ kind: 'not-listing', status: res.status }, res.status);
    }
  }
  if (typeof value !== 'object' || value === null) throw new ProtocolError({ kind: 'not-listing', status: res.status }, res.status);
  const { items = [], nextPageToken } = value as { items?: unknown; nextPageToken?: unknown };
  if (!Array.isArray(items) || (nextPageToken !== undefined && typeof nextPageToken !== 'string')) {
    throw new ProtocolError({ kind: 'not-listing', status: res.status }, res.status);
  }
  const listed = items.map((item: unknown): ListedObject => {
    const entry = item as Record<string, unknown> | null;
    const size = Number(entry?.size ?? 0);
    if (typeof entry?.name !== 'string' || !Number.isSafeInteger(size)) {
      throw new ProtocolError({ kind: 'not-listing', status: res.status }, res.status);
    }
    return {
      bucket: typeof entry.bucket === 'string' ? entry.bucket : bucket,
      name: entry.name,
      generation: typeof entry.generation === 'string' || typeof entry.generation === 'number' ? String(entry.generation) : '',
      size,
      timeCreated: typeof entry.timeCreated === 'string' ? entry.timeCreated : '',
      crc32c: typeof entry.crc32c === 'string' ? entry.crc32c : undefined,
      componentCount: typeof entry.componentCount === 'number' ? entry.componentCount : undefined,
    };
  });
  return { items: listed, nextPageToken: nextPageToken === '' ? undefined : nextPageToken };
}
