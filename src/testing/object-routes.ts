/**
 * The object API routes of the local GCS server: bucket and object metadata, listing (paginated), delete, compose
 * (`/storage/v1/b/...`) and media (`alt=media`, `/download/storage/v1/b/...`), enough for `@google-cloud/storage` to
 * read objects back and for composite uploads. Object reads (metadata and media `GET`s) run through a fault stage,
 * so that rules of kind `metadata` or `media` can break them; compose, delete and listing run through one too (rules
 * of kind `compose`, `delete`, `list`, and chaos that asks for them); bucket reads and `HEAD` only get the server's
 * latency.
 */
import type { ChaosRequest } from './chaos.js';
import { composeOutcome } from './compose.js';
import type { Exchange } from './exchange.js';
import type { FaultStage } from './fault-stage.js';
import type { FaultContext, ObjectApiFaultKind, ObjectReadFaultKind } from './faults.js';
import type { LocalObject, ObjectStore } from './object-store.js';
import { errorOutcome, jsonOutcome, type Outcome } from './outcome.js';
import { decodeSegment, headerValue, nonNegativeInteger, preconditionsOf } from './request-fields.js';

/** GCS's default and largest page of a listing. */
const MAX_LIST_RESULTS = 1000;

/** A listing's page token: the last name of the previous page, opaque to clients. */
function pageTokenAfter(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function nameOfPageToken(token: string): string {
  return Buffer.from(token, 'base64url').toString('utf8');
}

/** The bytes a media `GET` asks for, from its `Range` header, as a fault context's range (inclusive). */
function requestedRange(header: string | undefined): FaultContext['range'] {
  if (header === undefined) return { start: 0, end: Infinity };
  const match = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined; // a suffix range: which bytes depends on the size
  const [, first = '', last = ''] = match;
  return { start: Number(first), end: last === '' ? Infinity : Number(last) };
}

/** The object API routes over a server's object store. */
export class ObjectRoutes {
  readonly #store: ObjectStore;
  readonly #stage: (ex: Exchange, context: FaultContext, chaosRequest?: ChaosRequest) => FaultStage;
  /** Reads of each kind so far, by `bucket/name`: the `nth` of fault rules. */
  readonly #reads = new Map<string, Record<ObjectReadFaultKind, number>>();
  /** Compose, delete and list requests so far, by `kind bucket/name` (`list bucket`): the `nth` of fault rules. */
  readonly #calls = new Map<string, number>();

  /**
   * Routes reading, listing, composing and deleting the objects of `store`; `stage` decides the fault of a request
   * (scripted rules; chaos only when given a `chaosRequest`, which object reads never pass) and returns the stage
   * that carries it out.
   */
  constructor(store: ObjectStore, stage: (ex: Exchange, context: FaultContext, chaosRequest?: ChaosRequest) => FaultStage) {
    this.#store = store;
    this.#stage = stage;
  }

  /**
   * Handles a request to the object API. `rest` is its path after `/storage/v1/b/` (or `/download/storage/v1/b/`
   * when `download`), split on `/`: `[BUCKET]`, `[BUCKET, 'o']` or `[BUCKET, 'o', ...NAME]`.
   */
  async route(ex: Exchange, url: URL, rest: readonly string[], download: boolean): Promise<void> {
    const method = ex.record.method;
    const bucket = decodeSegment(rest[0] ?? '');
    if (bucket === undefined || bucket === '' || (rest.length > 1 && rest[1] !== 'o')) {
      return ex.drainAndSend(errorOutcome(404, `Not found: ${url.pathname}`));
    }
    if (rest.length === 1 && !download) {
      if (method !== 'GET') return ex.drainAndSend(errorOutcome(405, `${method} on a bucket is not supported.`));
      return ex.drainAndSend(jsonOutcome(200, { kind: 'storage#bucket', id: bucket, name: bucket, storageClass: 'STANDARD' }));
    }
    if (rest.length === 2 || (rest.length === 3 && rest[2] === '')) {
      if (method !== 'GET' || download) return ex.drainAndSend(errorOutcome(405, `${method} on an object list is not supported.`));
      ex.record.bucket = bucket;
      const stage = this.#apiStage(ex, 'list', bucket, undefined);
      return stage.run(0, () => ({ outcome: this.#listOutcome(url, bucket) }));
    }
    ex.record.bucket = bucket;
    // A compose's path ends in `/compose` after the destination's (encoded) name.
    const compose = method === 'POST' && !download && rest.length > 3 && rest[rest.length - 1] === 'compose';
    const name = decodeSegment(rest.slice(2, compose ? -1 : undefined).join('/'));
    if (name === undefined) return ex.drainAndSend(errorOutcome(400, 'Malformed object name in the URL.'));
    ex.record.object = name;
    if (compose) {
      const stage = this.#apiStage(ex, 'compose', bucket, name);
      const declared = nonNegativeInteger(headerValue(ex.req, 'content-length'));
      return stage.run(declared, (body) => ({
        outcome: composeOutcome(this.#store, bucket, name, url, ex.req, Buffer.concat(body.pieces).toString('utf8')),
      }));
    }
    if (method === 'DELETE' && !download) {
      const stage = this.#apiStage(ex, 'delete', bucket, name);
      return stage.run(0, () => ({ outcome: this.#deleteOutcome(url, bucket, name) }));
    }
    if (method !== 'GET') return this.#serveObject(ex, url, bucket, name, download);
    const kind: ObjectReadFaultKind = download || url.searchParams.get('alt') === 'media' ? 'media' : 'metadata';
    const context: FaultContext = { kinds: [kind], bucket, object: name, nth: { [kind]: this.#count(bucket, name, kind) } };
    if (kind === 'media') context.range = requestedRange(headerValue(ex.req, 'range'));
    // Decided before the object is looked up: a server that fails does so whether the object exists or not.
    return this.#stage(ex, context).runRead(() => this.#serveObject(ex, url, bucket, name, download));
  }

  /** The stage of a compose, delete or list request (scripted rules and chaos), counting it for `nth`. */
  #apiStage(ex: Exchange, kind: ObjectApiFaultKind, bucket: string, name: string | undefined): FaultStage {
    const key = name === undefined ? `${kind} ${bucket}` : `${kind} ${bucket}/${name}`;
    const nth = this.#calls.get(key) ?? 0;
    this.#calls.set(key, nth + 1);
    const context: FaultContext = { kinds: [kind], bucket, nth: { [kind]: nth } };
    if (name !== undefined) context.object = name;
    return this.#stage(ex, context, { kind, bodyLength: nonNegativeInteger(headerValue(ex.req, 'content-length')) ?? 0 });
  }

  /** A page of the objects of `bucket` whose names start with `prefix`, by name, after `pageToken`'s. */
  #listOutcome(url: URL, bucket: string): Outcome {
    const prefix = url.searchParams.get('prefix') ?? '';
    const maxText = url.searchParams.get('maxResults');
    const maxResults = maxText === null ? MAX_LIST_RESULTS : nonNegativeInteger(maxText);
    if (maxResults === undefined || maxResults === 0) return errorOutcome(400, `Invalid value for maxResults: ${JSON.stringify(maxText)}.`);
    const token = url.searchParams.get('pageToken');
    const after = token === null || token === '' ? undefined : nameOfPageToken(token);
    const matching = this.#store.list(bucket, prefix).filter((object) => after === undefined || object.name > after);
    const page = matching.slice(0, Math.min(maxResults, MAX_LIST_RESULTS));
    const listing: { kind: string; items?: unknown[]; nextPageToken?: string } = { kind: 'storage#objects' };
    // GCS leaves `items` out of an empty listing.
    if (page.length > 0) listing.items = page.map((object) => object.resource);
    const last = page[page.length - 1];
    if (last !== undefined && matching.length > page.length) listing.nextPageToken = pageTokenAfter(last.name);
    return jsonOutcome(200, listing);
  }

  /** Deletes `bucket/name` (the `generation` asked for, else the live one): 204, or 404 when there is no such object. */
  #deleteOutcome(url: URL, bucket: string, name: string): Outcome {
    const object = this.#store.get(bucket, name);
    const generation = url.searchParams.get('generation');
    if (object === undefined || (generation !== null && generation !== object.resource.generation)) {
      return errorOutcome(404, `No such object: ${bucket}/${name}`);
    }
    const preconditions = preconditionsOf(url);
    if (typeof preconditions === 'string') return errorOutcome(400, preconditions);
    const problem = this.#store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) return errorOutcome(412, problem);
    this.#store.delete(bucket, name);
    return { status: 204, headers: {}, body: '' };
  }

  /** The 0-based index of this read among the reads of `kind` of `bucket/name`. */
  #count(bucket: string, name: string, kind: ObjectReadFaultKind): number {
    const key = `${bucket}/${name}`;
    const seen = this.#reads.get(key) ?? { metadata: 0, media: 0 };
    this.#reads.set(key, seen);
    return seen[kind]++;
  }

  /** Metadata or media of one object. */
  async #serveObject(ex: Exchange, url: URL, bucket: string, name: string, download: boolean): Promise<void> {
    const method = ex.record.method;
    const object = this.#store.get(bucket, name);
    const generation = url.searchParams.get('generation');
    if (object === undefined || (generation !== null && generation !== object.resource.generation)) {
      return ex.drainAndSend(errorOutcome(404, `No such object: ${bucket}/${name}`));
    }
    const preconditions = preconditionsOf(url);
    if (typeof preconditions === 'string') return ex.drainAndSend(errorOutcome(400, preconditions));
    const problem = this.#store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) return ex.drainAndSend(errorOutcome(412, problem));
    if (method !== 'GET' && method !== 'HEAD') return ex.drainAndSend(errorOutcome(405, `${method} on an object is not supported.`));
    if (!download && url.searchParams.get('alt') !== 'media') return ex.drainAndSend(jsonOutcome(200, object.resource));
    await ex.readBody(undefined);
    return this.#sendMedia(ex, object);
  }

  async #sendMedia(ex: Exchange, object: LocalObject): Promise<void> {
    const { resource } = object;
    const size = object.size;
    if (object.discarded && size > 0) {
      return ex.send(errorOutcome(501, 'The object data was discarded (discardData: true); only its metadata is kept.'));
    }
    const hashes = [`crc32c=${resource.crc32c}`];
    if (resource.md5Hash !== undefined) hashes.push(`md5=${resource.md5Hash}`);
    const headers: Record<string, string> = {
      'content-type': resource.contentType,
      'x-goog-hash': hashes.join(','),
      'x-goog-generation': resource.generation,
      'x-goog-metageneration': resource.metageneration,
      'x-goog-stored-content-encoding': resource.contentEncoding ?? 'identity',
      'x-goog-stored-content-length': resource.size,
      'x-goog-storage-class': resource.storageClass,
      'accept-ranges': 'bytes',
      etag: resource.etag,
      'last-modified': new Date(resource.updated).toUTCString(),
    };
    if (resource.contentEncoding !== undefined) headers['content-encoding'] = resource.contentEncoding;
    if (resource.contentDisposition !== undefined) headers['content-disposition'] = resource.contentDisposition;
    if (resource.cacheControl !== undefined) headers['cache-control'] = resource.cacheControl;
    let status = 200;
    let start = 0;
    let end = size; // exclusive
    const rangeHeader = headerValue(ex.req, 'range');
    const match = rangeHeader === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(rangeHeader.trim());
    if (match !== null) {
      const [, first = '', last = ''] = match;
      if (first === '' && last !== '') {
        start = Math.max(0, size - Number(last));
      } else if (first !== '') {
        start = Number(first);
        if (last !== '') end = Math.min(size, Number(last) + 1);
      }
      if (first !== '' || last !== '') {
        if (start >= size || start >= end) {
          return ex.send(
            errorOutcome(416, `Range ${rangeHeader ?? ''} is not satisfiable for ${size} bytes.`, { 'content-range': `bytes */${size}` }),
          );
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end - 1}/${size}`;
      }
    }
    headers['content-length'] = String(end - start);
    await ex.waitLatency();
    const { res, record } = ex;
    if (res.destroyed) {
      record.status = 'aborted';
      return;
    }
    record.status = status;
    res.writeHead(status, headers);
    if (ex.req.method === 'HEAD') {
      res.end();
      return;
    }
    return ex.writeBody(object.slice(start, end));
  }
}
