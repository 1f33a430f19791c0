/**
 * A GCS-compatible HTTP server on 127.0.0.1 for tests: resumable uploads of the JSON API, object metadata and media
 * (enough for `@google-cloud/storage` to read objects back), scripted and seeded-random faults.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Chaos, type ChaosOptions, type ChaosScope, type ScopedChaosOptions } from './chaos.js';
import { kindsOf, parseContentRange, type ContentRange } from './content-range.js';
import { Exchange, type Body, type ExchangeHost, type RequestRecord } from './exchange.js';
import { describeFault, FaultRules, type FaultAction, type FaultContext, type FaultKind, type FaultRule } from './faults.js';
import {
  contentOf,
  crc32cToBase64,
  isValidBucketName,
  objectNameProblem,
  ObjectStore,
  type LocalObject,
  type ObjectMetadata,
  type StoredObject,
} from './object-store.js';
import { errorOutcome, incomplete, jsonOutcome, type Outcome } from './outcome.js';
import { decodeSegment, headerValue, isRecord, metadataOf, nonNegativeInteger, parseGoogHash, preconditionsOf } from './request-fields.js';
import { UploadSession, type SessionInfo } from './sessions.js';
import { Timers } from './timers.js';

export type { RequestKind, RequestRecord, RequestStatus } from './exchange.js';

/** Options of {@link startLocalGcs}. */
export interface LocalGcsOptions {
  /** Delay added before every response, in milliseconds; default 0. Change it later with `setLatency`. */
  latencyMs?: number;
  /** Default seed for chaos (when `chaos.seed` is not given); default 1. */
  seed?: number;
  /** Seeded random faults from the start; see {@link ChaosOptions}. Change them later with `setChaos`. */
  chaos?: ChaosOptions;
  /** Keep only the size and checksums of uploaded objects, not their bytes (for benchmarks); default false. */
  discardData?: boolean;
  /** Compute MD5 digests (`md5Hash`) of uploads; default true. Turn off to save CPU in benchmarks. */
  computeMd5?: boolean;
  /** Interval between bytes of a `trickle` response, in milliseconds; default 1000. */
  trickleIntervalMs?: number;
}

/** Size unit of resumable uploads: every chunk but the last must be a multiple of it. */
const CHUNK_ALIGNMENT = 256 * 1024;

type NormalizedOptions = Readonly<Required<Omit<LocalGcsOptions, 'chaos'>>>;

function sameBase64(a: string, b: string): boolean {
  return Buffer.from(a, 'base64').equals(Buffer.from(b, 'base64'));
}

function normalizeOptions(options: LocalGcsOptions): NormalizedOptions {
  const latencyMs = options.latencyMs ?? 0;
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) throw new RangeError(`latencyMs must be >= 0, got ${latencyMs}`);
  const trickleIntervalMs = options.trickleIntervalMs ?? 1000;
  if (!(Number.isFinite(trickleIntervalMs) && trickleIntervalMs >= 0)) {
    throw new RangeError(`trickleIntervalMs must be >= 0, got ${trickleIntervalMs}`);
  }
  return Object.freeze({
    latencyMs,
    seed: options.seed ?? 1,
    discardData: options.discardData ?? false,
    computeMd5: options.computeMd5 ?? true,
    trickleIntervalMs,
  });
}

/**
 * A running local GCS server. Create it with {@link startLocalGcs}; point clients at {@link LocalGcs.url} (as
 * `apiEndpoint`); always {@link LocalGcs.close} it.
 */
export class LocalGcs {
  /**
   * Emits `change` whenever a request arrives, whenever an object is created, and whenever a request ends (its
   * records, sessions and objects are then up to date): await it instead of polling, e.g. `until(() => server.listSessions().length > 0, ...)`.
   */
  readonly activity = new EventEmitter();

  readonly #options: NormalizedOptions;
  readonly #server: Server;
  readonly #store: ObjectStore;
  readonly #sessions = new Map<string, UploadSession>();
  readonly #sessionList: UploadSession[] = [];
  readonly #rules = new FaultRules();
  readonly #records: RequestRecord[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Timers();
  readonly #exchangeHost: ExchangeHost;
  #chaos: Chaos | undefined;
  readonly #scopedChaos = new Set<{ readonly chaos: Chaos; readonly bucket?: string; readonly object?: string }>();
  #latencyMs: number;
  #url = '';
  #opens = 0;
  #faultsInjected = 0;
  #cancelledSessions = 0;
  #closing: Promise<void> | undefined;

  private constructor(options: LocalGcsOptions) {
    this.#options = normalizeOptions(options);
    this.#latencyMs = this.#options.latencyMs;
    this.#chaos = options.chaos === undefined ? undefined : new Chaos(options.chaos, this.#options.seed);
    this.#store = new ObjectStore(() => this.#url);
    this.#exchangeHost = { latencyMs: () => this.#latencyMs, trickleIntervalMs: this.#options.trickleIntervalMs, timers: this.#timers };
    this.#server = createServer((req, res) => this.#onRequest(req, res));
    // Longer than clients keep idle sockets, so that a reused connection is never closed under a request.
    this.#server.keepAliveTimeout = 60_000;
    this.#server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a server listening on 127.0.0.1 on a free port. Same as {@link startLocalGcs}. */
  static async start(options: LocalGcsOptions = {}): Promise<LocalGcs> {
    const gcs = new LocalGcs(options);
    await new Promise<void>((resolve, reject) => {
      gcs.#server.once('error', reject);
      gcs.#server.listen(0, '127.0.0.1', () => {
        gcs.#server.off('error', reject);
        resolve();
      });
    });
    const address = gcs.#server.address();
    if (address === null || typeof address === 'string') throw new Error('local GCS server has no TCP address');
    gcs.#url = `http://127.0.0.1:${address.port}`;
    return gcs;
  }

  /** The server's base URL, `http://127.0.0.1:PORT`: use it as the `apiEndpoint`. */
  get url(): string {
    return this.#url;
  }

  /** Every request received, in order of arrival. */
  get requests(): readonly RequestRecord[] {
    return this.#records;
  }

  /** How many faults (scripted and chaos) have fired. */
  get faultsInjected(): number {
    return this.#faultsInjected;
  }

  /** How many sessions were opened. */
  get sessionCount(): number {
    return this.#sessionList.length;
  }

  /** How many sessions were cancelled by a `DELETE`. */
  get cancelledSessions(): number {
    return this.#cancelledSessions;
  }

  /** How many scripted rules still have firings left. */
  get pendingFaults(): number {
    return this.#rules.pending;
  }

  /** Snapshots of every session, in the order they were opened. */
  listSessions(): SessionInfo[] {
    return this.#sessionList.map((session) => session.info());
  }

  /** The live generation of an object, if any. */
  getObject(bucket: string, name: string): StoredObject | undefined {
    return this.#store.get(bucket, name);
  }

  /** Live objects, sorted by bucket and name; of one bucket if given. */
  listObjects(bucket?: string): StoredObject[] {
    return this.#store.list(bucket);
  }

  /** Creates (or replaces with a new generation) an object, e.g. to test preconditions against an existing one. */
  putObject(bucket: string, name: string, data: Buffer, meta: ObjectMetadata = {}): StoredObject {
    if (!isValidBucketName(bucket)) throw new RangeError(`invalid bucket name: ${JSON.stringify(bucket)}`);
    const problem = objectNameProblem(name);
    if (problem !== undefined) throw new RangeError(problem);
    return this.#store.create(bucket, name, contentOf(Buffer.from(data), this.#options.computeMd5), meta);
  }

  /** Deletes the live generation of an object; returns whether there was one. */
  deleteObject(bucket: string, name: string): boolean {
    return this.#store.delete(bucket, name);
  }

  /** Adds a scripted fault after the existing ones. Throws if the rule is malformed. */
  inject(rule: FaultRule): void {
    this.#rules.add(rule);
  }

  /** Removes every scripted fault. */
  clearFaults(): void {
    this.#rules.clear();
  }

  /** Sets the delay added before every response, in milliseconds. */
  setLatency(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`latency must be >= 0 ms, got ${ms}`);
    this.#latencyMs = ms;
  }

  /** Starts seeded random faults afresh with these options (a new PRNG from the seed), or stops them. */
  setChaos(chaos: ChaosOptions | undefined): void {
    this.#chaos = chaos === undefined ? undefined : new Chaos(chaos, this.#options.seed);
  }

  /**
   * Adds seeded random faults confined to the uploads of one object and/or bucket, next to the server-wide chaos of
   * `setChaos`. A request of such an upload is decided by the first scope that covers it alone, so its faults
   * depend only on the seed and that upload's own requests: concurrent uploads, each with its own scope, replay
   * deterministically. Scripted faults still come first. Returns a handle to count its faults and remove it.
   */
  addChaos(options: ScopedChaosOptions): ChaosScope {
    const { bucket, object, ...chaosOptions } = options;
    if (bucket !== undefined && typeof bucket !== 'string') throw new TypeError('chaos.bucket must be a string');
    if (object !== undefined && typeof object !== 'string') throw new TypeError('chaos.object must be a string');
    const scope = { chaos: new Chaos(chaosOptions, this.#options.seed), ...(bucket === undefined ? {} : { bucket }), ...(object === undefined ? {} : { object }) };
    this.#scopedChaos.add(scope);
    const scopes = this.#scopedChaos;
    return {
      get fired() {
        return scope.chaos.fired;
      },
      remove() {
        scopes.delete(scope);
      },
    };
  }

  /** Stops the server: destroys open connections (stalled ones too) and pending timers. Never hangs. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#timers.close();
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
    return this.#closing;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Dispatch

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const exchange = new Exchange(req, res, this.#exchangeHost);
    this.#records.push(exchange.record);
    this.activity.emit('change');
    res.once('close', () => this.activity.emit('change'));
    this.#route(exchange).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent && !res.destroyed) void exchange.send(errorOutcome(500, `Internal error: ${message}`));
      else res.destroy();
    });
  }

  async #route(ex: Exchange): Promise<void> {
    const url = new URL(ex.req.url ?? '/', 'http://127.0.0.1');
    const method = ex.record.method;
    const segments = url.pathname.split('/');
    // ['', 'upload', 'storage', 'v1', 'b', BUCKET, 'o']
    if (url.pathname.startsWith('/upload/storage/v1/b/')) {
      const bucket = decodeSegment(segments[5] ?? '');
      if (segments.length !== 7 || segments[6] !== 'o' || bucket === undefined) {
        return ex.drainAndSend(errorOutcome(404, `Not found: ${url.pathname}`));
      }
      const uploadId = url.searchParams.get('upload_id');
      if (uploadId === null) {
        if (method !== 'POST') return ex.drainAndSend(errorOutcome(405, `${method} needs an upload_id.`));
        ex.record.kind = 'open';
        return this.#handleOpen(ex, bucket, url);
      }
      const session = this.#sessions.get(uploadId);
      ex.record.kind = method === 'DELETE' ? 'cancel' : 'other';
      if (method === 'PUT') {
        const range = parseContentRange(headerValue(ex.req, 'content-range'));
        ex.record.kind = typeof range === 'string' ? 'chunk' : (kindsOf(range)[0] ?? 'chunk');
      }
      if (session === undefined) return ex.drainAndSend(errorOutcome(404, 'No such upload session.'));
      ex.record.session = session.index;
      ex.record.bucket = session.spec.bucket;
      ex.record.object = session.spec.name;
      if (method === 'PUT') return this.#handlePut(ex, session);
      if (method === 'DELETE') return this.#handleCancel(ex, session);
      return ex.drainAndSend(errorOutcome(405, `${method} is not supported on an upload session.`));
    }
    const download = url.pathname.startsWith('/download/storage/v1/b/');
    if (download || url.pathname.startsWith('/storage/v1/b/')) {
      ex.record.kind = 'object';
      // ['', 'storage', 'v1', 'b', BUCKET, 'o', NAME...] or ['', 'download', 'storage', 'v1', 'b', BUCKET, 'o', NAME...]
      const rest = segments.slice(download ? 5 : 4);
      return this.#handleObjectApi(ex, url, rest, download);
    }
    return ex.drainAndSend(errorOutcome(404, `Not found: ${url.pathname}`));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Resumable uploads

  async #handleOpen(ex: Exchange, bucket: string, url: URL): Promise<void> {
    const { req } = ex;
    const index = this.#sessionList.length;
    const declaredLength = nonNegativeInteger(headerValue(req, 'content-length'));
    ex.record.bucket = bucket;
    const context: FaultContext = { kinds: ['open'], session: index, nth: { open: this.#opens++ }, bucket };
    const queryName = url.searchParams.get('name');
    if (queryName !== null) context.object = ex.record.object = queryName;
    const action = this.#decide(ex, context, { kind: 'open', bodyLength: declaredLength });
    const body = await this.#receive(ex, action, declaredLength);
    if (body === undefined) return;
    if (action?.type === 'status' && action.when !== 'after') return ex.send(this.#faultOutcome(ex, action));
    if (action?.type === 'expire') return ex.send(errorOutcome(action.status ?? 404, 'Injected fault: expired.'));

    const uploadType = url.searchParams.get('uploadType');
    if (uploadType !== 'resumable') {
      return ex.send(errorOutcome(400, `Only uploadType=resumable is supported, got ${String(uploadType)}.`));
    }
    if (!isValidBucketName(bucket)) return ex.send(errorOutcome(400, `Invalid bucket name: ${JSON.stringify(bucket)}.`));
    let resource: Record<string, unknown> = {};
    if (body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(body.pieces).toString('utf8'));
      } catch {
        return ex.send(errorOutcome(400, 'The request body is not valid JSON.'));
      }
      if (!isRecord(parsed)) return ex.send(errorOutcome(400, 'The request body must be a JSON object resource.'));
      resource = parsed;
    }
    const name = queryName ?? (typeof resource.name === 'string' ? resource.name : undefined);
    if (name === undefined) return ex.send(errorOutcome(400, 'Required parameter: name.'));
    ex.record.object = name;
    const nameProblem = objectNameProblem(name);
    if (nameProblem !== undefined) return ex.send(errorOutcome(400, nameProblem));
    const preconditions = preconditionsOf(url);
    if (typeof preconditions === 'string') return ex.send(errorOutcome(400, preconditions));
    const declaredSizeHeader = headerValue(req, 'x-upload-content-length');
    const declaredSize = nonNegativeInteger(declaredSizeHeader);
    if (declaredSizeHeader !== undefined && declaredSize === undefined) {
      return ex.send(errorOutcome(400, `Invalid X-Upload-Content-Length: ${JSON.stringify(declaredSizeHeader)}.`));
    }
    const problem = this.#store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) return ex.send(errorOutcome(412, problem));

    if (action?.type === 'hostile' && action.variant === 'no-location') {
      return ex.send({ status: 200, headers: {}, body: '' });
    }
    const session = new UploadSession(index, { bucket, name, meta: metadataOf(resource, req, url), preconditions, declaredSize }, this.#options.discardData, this.#options.computeMd5);
    const query = `uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
    const path = `/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?${query}`;
    if (action?.type === 'hostile' && action.variant === 'foreign-location') {
      const origin = action.url === undefined ? 'http://127.0.0.2:1' : new URL(action.url).origin;
      return ex.send({ status: 200, headers: { location: `${origin}${path}` }, body: '' });
    }
    this.#sessions.set(session.id, session);
    this.#sessionList.push(session);
    ex.record.session = index;
    return this.#finish(ex, action, { status: 200, headers: { location: `${this.#url}${path}` }, body: '' }, 0, 0);
  }

  async #handlePut(ex: Exchange, session: UploadSession): Promise<void> {
    const { req } = ex;
    const header = headerValue(req, 'content-range');
    if (header !== undefined) ex.record.contentRange = header;
    const range = parseContentRange(header);
    if (typeof range === 'string') return ex.drainAndSend(errorOutcome(400, range));
    const kinds = kindsOf(range);
    const primary = kinds[0] ?? 'chunk';
    ex.record.kind = primary;

    const { bucket, name: object } = session.spec;
    const context: FaultContext = { kinds, session: session.index, nth: session.count(kinds), bucket, object };
    let declaredLength = nonNegativeInteger(headerValue(req, 'content-length'));
    if (range.type === 'bytes') {
      context.range = { start: range.start, end: range.end ?? Infinity };
      if (range.end !== undefined) declaredLength = range.end - range.start + 1;
      if (range.total !== undefined) context.total = range.total;
    } else if (range.type === 'total') {
      context.total = range.total;
      declaredLength = 0;
    } else {
      declaredLength = 0;
    }
    const action = this.#decide(ex, context, { kind: primary, bodyLength: declaredLength });
    if (action === undefined && this.#options.discardData && range.type === 'bytes' && range.end !== undefined && session.state === 'active' && range.start === session.committed) {
      return this.#streamBytes(ex, session, range.start, range.end, range.total);
    }
    const body = await this.#receive(ex, action, declaredLength);
    if (body === undefined) return;
    if (action?.type === 'status' && action.when !== 'after') return ex.send(this.#faultOutcome(ex, action));
    if (action?.type === 'expire') session.expire(action.status ?? 404);

    const committedBefore = session.committed;
    const outcome = this.#stateOutcome(session) ?? this.#applyPut(ex, session, range, body, action);
    const sentEnd = range.type === 'bytes' ? range.start + body.length : committedBefore;
    return this.#finish(ex, action, outcome, committedBefore, sentEnd);
  }

  /**
   * Benchmark path (`discardData`, no fault): checks the range up front, then hashes and drops the body as it
   * arrives, so that a single multi-GiB PUT costs the server no memory and runs at the link's speed.
   */
  async #streamBytes(ex: Exchange, session: UploadSession, start: number, end: number, total: number | undefined): Promise<void> {
    const length = end - start + 1;
    const declared = session.spec.declaredSize;
    const last = (total !== undefined && end + 1 === total) || (declared !== undefined && end + 1 === declared);
    const problem =
      (total !== undefined ? this.#totalProblem(session, total, session.committed) : undefined) ??
      (total !== undefined && end + 1 > total ? `Content-Range ends at byte ${end + 1} beyond the total size ${total}.` : undefined) ??
      (total === undefined && declared !== undefined && end + 1 > declared ? `The upload was declared as ${declared} bytes but byte ${end} was sent.` : undefined) ??
      (!last && length % CHUNK_ALIGNMENT !== 0
        ? `Every chunk but the last must be a multiple of ${CHUNK_ALIGNMENT} bytes; this one has ${length}.`
        : undefined);
    if (problem !== undefined) return ex.drainAndSend(errorOutcome(400, problem));
    const committedBefore = session.committed;
    const received = await new Promise<number>((resolve) => {
      let count = 0;
      ex.req.on('data', (piece: Buffer) => {
        const take = Math.min(piece.length, length - count);
        if (take > 0) session.append([piece], 0, take);
        count += piece.length;
      });
      ex.req.once('end', () => resolve(count));
      ex.req.once('close', () => resolve(ex.req.complete ? count : -1));
      ex.req.once('error', () => resolve(-1));
    });
    ex.record.bytesReceived = Math.max(0, received);
    if (received < 0) {
      if (ex.record.status === 'pending') ex.record.status = 'aborted';
      return;
    }
    if (received !== length) {
      return ex.send(errorOutcome(400, `Content-Range covers ${length} bytes but the body has ${received}.`));
    }
    if (total !== undefined) session.total = total;
    const outcome = last && session.committed === end + 1 ? this.#finalize(ex, session) : incomplete(session.committed);
    return this.#finish(ex, undefined, outcome, committedBefore, start + received);
  }

  /** The answer for a session that no longer accepts bytes, or `undefined` while it is active. */
  #stateOutcome(session: UploadSession): Outcome | undefined {
    switch (session.state) {
      case 'active':
        return undefined;
      case 'finalized':
        return jsonOutcome(200, session.object?.resource ?? {});
      case 'failed': {
        const failure = session.failure ?? { status: 400, message: 'The upload failed.' };
        return errorOutcome(failure.status, failure.message);
      }
      case 'cancelled':
        return errorOutcome(session.deadStatus, 'The upload session was cancelled.');
      case 'expired':
        return errorOutcome(session.deadStatus, session.deadStatus === 404 ? 'No such upload session (expired).' : 'The upload session is gone.');
    }
  }

  #applyPut(ex: Exchange, session: UploadSession, range: ContentRange, body: Body, action: FaultAction | undefined): Outcome {
    const committed = session.committed;
    const holdFinalize =
      action?.type === 'partial' ||
      (action?.type === 'hostile' && ['bad-range', 'range-beyond', 'range-backwards', 'bad-object'].includes(action.variant));

    if (range.type === 'query') {
      if (body.length > 0) return errorOutcome(400, 'A status query (Content-Range: bytes */*) must not carry a body.');
      return incomplete(committed);
    }
    if (range.type === 'total') {
      if (body.length > 0) return errorOutcome(400, `Content-Range ${ex.record.contentRange ?? ''} announces no bytes but the body has ${body.length}.`);
      const totalProblem = this.#totalProblem(session, range.total, committed);
      if (totalProblem !== undefined) return errorOutcome(400, totalProblem);
      session.total = range.total;
      if (committed < range.total || holdFinalize) return incomplete(committed);
      return this.#finalize(ex, session);
    }

    const { start } = range;
    if (start > committed) {
      return errorOutcome(400, `Content-Range starts at byte ${start} but only ${committed} bytes are persisted; bytes in between are missing.`);
    }
    if (range.end !== undefined && body.length !== range.end - start + 1) {
      return errorOutcome(400, `Content-Range covers ${range.end - start + 1} bytes but the body has ${body.length}.`);
    }
    const end = start + body.length; // exclusive
    const total = range.total ?? (range.openEnded ? end : undefined);
    if (total !== undefined) {
      if (end > total) return errorOutcome(400, `Content-Range ends at byte ${end} beyond the total size ${total}.`);
      const totalProblem = this.#totalProblem(session, total, committed);
      if (totalProblem !== undefined) return errorOutcome(400, totalProblem);
    } else if (session.total !== undefined && end > session.total) {
      return errorOutcome(400, `The upload was declared as ${session.total} bytes but byte ${end - 1} was sent.`);
    }
    // GCS completes a session opened with X-Upload-Content-Length as soon as that many bytes have arrived, even
    // when the request's Content-Range says `/*`.
    const last = (total !== undefined && end === total) || (session.spec.declaredSize !== undefined && end === session.spec.declaredSize);
    if (!last && !range.openEnded && body.length % CHUNK_ALIGNMENT !== 0) {
      return errorOutcome(400, `Every chunk but the last must be a multiple of ${CHUNK_ALIGNMENT} bytes; this one has ${body.length}.`);
    }
    if (range.total !== undefined) session.total = range.total;
    const persistUpTo = action?.type === 'partial' ? Math.min(action.bytes, body.length) : body.length;
    const skip = committed - start; // bytes of the body already persisted by an earlier request
    if (skip < persistUpTo) session.append(body.pieces, skip, persistUpTo);
    if (last && session.committed === end && !holdFinalize) return this.#finalize(ex, session);
    return incomplete(session.committed);
  }

  /** Why `total` contradicts what the session already knows, or `undefined`. */
  #totalProblem(session: UploadSession, total: number, committed: number): string | undefined {
    if (session.total !== undefined && session.total !== total) {
      return `The total size ${total} contradicts the size ${session.total} announced earlier.`;
    }
    if (committed > total) return `The total size ${total} is below the ${committed} bytes already persisted.`;
    return undefined;
  }

  #finalize(ex: Exchange, session: UploadSession): Outcome {
    const { bucket, name, meta, preconditions } = session.spec;
    const hashHeader = headerValue(ex.req, 'x-goog-hash');
    const expected = hashHeader === undefined ? {} : parseGoogHash(hashHeader);
    if (typeof expected === 'string') return errorOutcome(400, expected);
    const problem = this.#store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) {
      session.fail(412, problem);
      return errorOutcome(412, problem);
    }
    const content = session.takeContent();
    const actualCrc = crc32cToBase64(content.crc32c);
    const mismatches: string[] = [];
    if (expected.crc32c !== undefined && !sameBase64(expected.crc32c, actualCrc)) {
      mismatches.push(`crc32c: client ${expected.crc32c}, server ${actualCrc}`);
    }
    if (expected.md5 !== undefined && content.md5 !== undefined && !Buffer.from(expected.md5, 'base64').equals(content.md5)) {
      mismatches.push(`md5: client ${expected.md5}, server ${content.md5.toString('base64')}`);
    }
    if (mismatches.length > 0) {
      const message = `Provided checksums do not match the uploaded data (${mismatches.join('; ')}); the object was not created.`;
      session.fail(400, message);
      return errorOutcome(400, message);
    }
    const object = this.#store.create(bucket, name, content, meta);
    session.finalize(object);
    // The object exists before its answer goes out (which a fault may delay or drop): say so now.
    this.activity.emit('change');
    return jsonOutcome(200, object.resource);
  }

  async #handleCancel(ex: Exchange, session: UploadSession): Promise<void> {
    const { bucket, name: object } = session.spec;
    const context: FaultContext = { kinds: ['cancel'], session: session.index, nth: session.count(['cancel']), bucket, object };
    const action = this.#decide(ex, context, { kind: 'cancel' });
    const body = await this.#receive(ex, action, nonNegativeInteger(headerValue(ex.req, 'content-length')));
    if (body === undefined) return;
    if (action?.type === 'status' && action.when !== 'after') return ex.send(this.#faultOutcome(ex, action));
    if (action?.type === 'expire') session.expire(action.status ?? 404);
    let outcome: Outcome;
    if (session.state === 'finalized' || session.state === 'expired') {
      // Nothing left to cancel: say what the session is.
      outcome = this.#stateOutcome(session) ?? errorOutcome(500, 'unreachable');
    } else {
      if (session.cancel()) this.#cancelledSessions += 1;
      outcome = { status: 499, message: 'Client Closed Request', headers: {}, body: '' };
    }
    return this.#finish(ex, action, outcome, session.committed, session.committed);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Faults

  /** The scripted fault for this request, else a chaos fault, else none; counts and records it. */
  #decide(ex: Exchange, context: FaultContext, chaosRequest: { kind: FaultKind; bodyLength?: number }): FaultAction | undefined {
    let action = this.#rules.take(context);
    if (action === undefined) action = this.#chaosFor(context)?.pick(chaosRequest);
    if (action === undefined) return undefined;
    this.#faultsInjected += 1;
    ex.record.fault = describeFault(action);
    if (action.type === 'latency') ex.delayMs += action.ms;
    if (action.type === 'hostile' && action.variant === 'trickle') ex.trickle = true;
    return action;
  }

  /** The chaos that decides for this request: the first scope covering it, else the server-wide one. */
  #chaosFor(context: FaultContext): Chaos | undefined {
    for (const scope of this.#scopedChaos) {
      if (scope.bucket !== undefined && scope.bucket !== context.bucket) continue;
      if (scope.object !== undefined && scope.object !== context.object) continue;
      return scope.chaos;
    }
    return this.#chaos;
  }

  #faultOutcome(ex: Exchange, action: { status: number; retryAfterSeconds?: number; message?: string }): Outcome {
    const headers: Record<string, string> = {};
    if (action.retryAfterSeconds !== undefined) headers['retry-after'] = String(action.retryAfterSeconds);
    if (action.status < 400) return { status: action.status, headers, body: '' };
    const message =
      action.message === undefined
        ? `Injected fault: HTTP ${action.status}.`
        : action.message
            .replaceAll('{url}', ex.req.url ?? '')
            .replaceAll('{authorization}', headerValue(ex.req, 'authorization') ?? '');
    return errorOutcome(action.status, message, headers);
  }

  /**
   * Reads the request body, carrying out the faults that act on it (stall, reset, corrupt). Returns `undefined`
   * when the exchange is over (connection reset, client gone, stalled for ever): the record is already updated.
   */
  async #receive(ex: Exchange, action: FaultAction | undefined, declaredLength: number | undefined): Promise<Body | undefined> {
    const { req, record } = ex;
    if (action?.type === 'stall') {
      if (action.ms === undefined) {
        // Never read, never answer: the client's stall detection (or close()) ends it.
        record.status = 'stalled';
        this.activity.emit('change');
        return undefined;
      }
      await ex.sleep(action.ms);
      if (req.destroyed || req.socket.destroyed) {
        record.status = 'stalled';
        return undefined;
      }
    }
    const resetAfter = action?.type === 'reset' ? (action.afterBytes ?? Math.floor((declaredLength ?? 0) / 2)) : undefined;
    if (resetAfter === 0) {
      ex.reset();
      return undefined;
    }
    const body = await ex.readBody(resetAfter);
    if (body === undefined) {
      if (resetAfter !== undefined && req.socket.destroyed && record.status === 'pending') record.status = 'reset';
      else if (record.status === 'pending') record.status = action?.type === 'stall' ? 'stalled' : 'aborted';
      return undefined;
    }
    record.bytesReceived = body.length;
    if (resetAfter !== undefined) {
      // The body was shorter than the reset point: reset once it has all arrived.
      ex.reset();
      return undefined;
    }
    if (action?.type === 'corrupt') flipByte(body, action.at ?? 0);
    return body;
  }

  /** Applies the faults that act on the response (status after, drop, hostile), then sends it. */
  async #finish(ex: Exchange, action: FaultAction | undefined, outcome: Outcome, committedBefore: number, sentEnd: number): Promise<void> {
    let final = outcome;
    if (action?.type === 'status' && action.when === 'after') final = this.#faultOutcome(ex, action);
    if (action?.type === 'drop-response') {
      await ex.waitLatency();
      ex.record.status = 'dropped';
      ex.req.socket.destroy();
      return;
    }
    if (action?.type === 'hostile') {
      switch (action.variant) {
        case 'bad-range':
          final = { status: 308, message: 'Resume Incomplete', headers: { range: 'bytes=abc' }, body: '' };
          break;
        case 'range-beyond':
          final = { status: 308, message: 'Resume Incomplete', headers: { range: `bytes=0-${sentEnd + CHUNK_ALIGNMENT - 1}` }, body: '' };
          break;
        case 'range-backwards':
          final = incomplete(Math.max(0, committedBefore - (action.bytes ?? 1)));
          break;
        case 'bad-object':
          final = { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' }, body: '{"hello":1}' };
          break;
        default:
          break;
      }
    }
    return ex.send(final);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Object API

  async #handleObjectApi(ex: Exchange, url: URL, rest: string[], download: boolean): Promise<void> {
    const method = ex.record.method;
    // rest: [BUCKET] | [BUCKET, 'o'] | [BUCKET, 'o', ...NAME]
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
      const prefix = url.searchParams.get('prefix') ?? '';
      const items = this.#store.list(bucket, prefix).map((object) => object.resource);
      return ex.drainAndSend(jsonOutcome(200, { kind: 'storage#objects', items }));
    }
    ex.record.bucket = bucket;
    const name = decodeSegment(rest.slice(2).join('/'));
    if (name === undefined) return ex.drainAndSend(errorOutcome(400, 'Malformed object name in the URL.'));
    ex.record.object = name;
    const object = this.#store.get(bucket, name);
    const generation = url.searchParams.get('generation');
    if (object === undefined || (generation !== null && generation !== object.resource.generation)) {
      return ex.drainAndSend(errorOutcome(404, `No such object: ${bucket}/${name}`));
    }
    const preconditions = preconditionsOf(url);
    if (typeof preconditions === 'string') return ex.drainAndSend(errorOutcome(400, preconditions));
    const problem = this.#store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) return ex.drainAndSend(errorOutcome(412, problem));
    if (method === 'DELETE' && !download) {
      this.#store.delete(bucket, name);
      return ex.drainAndSend({ status: 204, headers: {}, body: '' });
    }
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
          return ex.send(errorOutcome(416, `Range ${rangeHeader ?? ''} is not satisfiable for ${size} bytes.`, { 'content-range': `bytes */${size}` }));
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
    for (const part of object.slice(start, end)) {
      if (!res.write(part)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
        if (res.destroyed) return;
      }
    }
    res.end();
  }
}

function flipByte(body: Body, at: number): void {
  let position = 0;
  for (const piece of body.pieces) {
    if (at < position + piece.length) {
      const index = at - position;
      piece[index] = (piece[index] ?? 0) ^ 0xff;
      return;
    }
    position += piece.length;
  }
}

/** Starts a local GCS server on 127.0.0.1 on a free port. Close it with {@link LocalGcs.close}. */
export function startLocalGcs(options: LocalGcsOptions = {}): Promise<LocalGcs> {
  return LocalGcs.start(options);
}
