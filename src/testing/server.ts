/**
 * A GCS-compatible HTTP server on 127.0.0.1 for tests: resumable uploads of the JSON API, object metadata and media
 * (enough for `@google-cloud/storage` to read objects back), scripted and seeded-random faults.
 *
 * This file is the server's public face, its dispatch and its fault decisions. A request becomes an `Exchange`
 * (exchange.ts), is routed to the upload routes (upload-routes.ts) or the object API (object-routes.ts), and an
 * upload request runs inside a `FaultStage` (fault-stage.ts) built from the fault decided for it here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Chaos, type ChaosOptions, type ChaosRequest, type ChaosScope, type ScopedChaosOptions } from './chaos.js';
import { Exchange, type ExchangeHost, type RequestRecord } from './exchange.js';
import { FaultStage } from './fault-stage.js';
import { describeFault, FaultRules, type FaultContext, type FaultRule } from './faults.js';
import { ObjectRoutes } from './object-routes.js';
import { contentOf, isValidBucketName, objectNameProblem, ObjectStore, type ObjectMetadata, type StoredObject } from './object-store.js';
import { errorOutcome } from './outcome.js';
import type { SessionInfo } from './sessions.js';
import { Timers } from './timers.js';
import { ConnectionThrottle, type ThrottleStats } from './connection-throttle.js';
import { UploadRoutes } from './upload-routes.js';
import { LocalGcsGrpc } from './grpc-server.js';

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
  /**
   * Also serve storage v2 `BidiWriteObject` (appendable objects) over gRPC on 127.0.0.1, sharing this server's
   * objects; reach it through {@link LocalGcs.grpc}. Default false (the gRPC stack is then never loaded).
   */
  grpc?: boolean;
  /**
   * How long an idle kept-alive connection stays open before the server closes it, in milliseconds (announced in
   * `Keep-Alive: timeout=N`). Default 610,000: the client keep-alive timeout of Google's front ends. A client that
   * reuses a connection the server is closing fails with EPIPE or ECONNRESET; set it short to test that yours
   * closes idle connections first (see {@link LocalGcs.connections}). 0: never closed.
   */
  keepAliveTimeoutMs?: number;
  /**
   * The buckets that exist: opening an upload into, or reading from, any other is answered as GCS answers it (404,
   * "The specified bucket does not exist."). Default: every bucket exists as soon as it is named. `createBucket`
   * adds one later.
   */
  buckets?: readonly string[];
  /**
   * A bandwidth limit per connection, in bytes per second: request bodies are read from each connection no faster
   * than this (a token bucket per connection; the request is paused, so TCP holds the client back and nothing is
   * buffered). Models GCS's per-stream throughput cap, so that a benchmark on loopback shows what parallel
   * connections gain. Default: no limit. See {@link LocalGcs.throttleStats}.
   */
  connectionBytesPerSecond?: number;
  /** TCP port of the HTTP server on 127.0.0.1; default 0 (a free port, see {@link LocalGcs.url}). */
  port?: number;
  /** TCP port of the gRPC server (with `grpc: true`) on 127.0.0.1; default 0 (a free port, see `grpc.address`). */
  grpcPort?: number;
}

/** Connections the server accepted, and who closed those that ended (see {@link LocalGcs.connections}). */
export interface ConnectionStats {
  /** Connections accepted so far. */
  opened: number;
  /** Connections the client closed (the server saw its FIN first). */
  closedByClient: number;
  /** Connections the server closed or that broke (keep-alive timeout, faults, `close()`). */
  closedByServer: number;
}

/** GCS's front ends close an idle client connection after 610 s (see IDLE_SOCKET_TIMEOUT_MS in core/transport.ts). */
const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 610_000;

type NormalizedOptions = Readonly<
  Required<Omit<LocalGcsOptions, 'chaos' | 'grpc' | 'buckets' | 'port' | 'grpcPort' | 'connectionBytesPerSecond'>>
>;

/** `port` if it is a TCP port number (0: any free one); throws RangeError otherwise. */
function portOf(name: string, port: number | undefined): number {
  const value = port ?? 0;
  if (!(Number.isInteger(value) && value >= 0 && value <= 65_535)) throw new RangeError(`${name} must be 0-65535, got ${value}`);
  return value;
}

function normalizeOptions(options: LocalGcsOptions): NormalizedOptions {
  const latencyMs = options.latencyMs ?? 0;
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) throw new RangeError(`latencyMs must be >= 0, got ${latencyMs}`);
  const trickleIntervalMs = options.trickleIntervalMs ?? 1000;
  if (!(Number.isFinite(trickleIntervalMs) && trickleIntervalMs >= 0)) {
    throw new RangeError(`trickleIntervalMs must be >= 0, got ${trickleIntervalMs}`);
  }
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  if (!(Number.isSafeInteger(keepAliveTimeoutMs) && keepAliveTimeoutMs >= 0)) {
    throw new RangeError(`keepAliveTimeoutMs must be an integer >= 0, got ${keepAliveTimeoutMs}`);
  }
  return Object.freeze({
    keepAliveTimeoutMs,
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
  readonly #uploads: UploadRoutes;
  readonly #objects: ObjectRoutes;
  readonly #exchangeHost: ExchangeHost;
  readonly #rules = new FaultRules();
  readonly #records: RequestRecord[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #connections: ConnectionStats = { opened: 0, closedByClient: 0, closedByServer: 0 };
  readonly #timers = new Timers();
  #chaos: Chaos | undefined;
  readonly #scopedChaos = new Set<{ readonly chaos: Chaos; readonly bucket?: string; readonly object?: string }>();
  #latencyMs: number;
  #url = '';
  #faultsInjected = 0;
  #grpc: LocalGcsGrpc | undefined;
  #closing: Promise<void> | undefined;
  readonly #throttle: ConnectionThrottle | undefined;

  private constructor(options: LocalGcsOptions) {
    this.#options = normalizeOptions(options);
    this.#latencyMs = this.#options.latencyMs;
    this.#chaos = options.chaos === undefined ? undefined : new Chaos(options.chaos, this.#options.seed);
    if (options.buckets !== undefined) {
      if (!Array.isArray(options.buckets)) throw new TypeError('buckets must be an array of bucket names');
      for (const bucket of options.buckets) {
        if (typeof bucket !== 'string' || !isValidBucketName(bucket))
          throw new RangeError(`invalid bucket name: ${JSON.stringify(bucket)}`);
      }
    }
    this.#store = new ObjectStore(() => this.#url, options.buckets);
    const limit = options.connectionBytesPerSecond;
    if (limit !== undefined && !(Number.isFinite(limit) && limit > 0)) {
      throw new RangeError(`connectionBytesPerSecond must be a positive number, got ${String(limit)}`);
    }
    this.#throttle = limit === undefined ? undefined : new ConnectionThrottle(limit, this.#timers);
    this.#exchangeHost = {
      latencyMs: () => this.#latencyMs,
      trickleIntervalMs: this.#options.trickleIntervalMs,
      timers: this.#timers,
      throttle: this.#throttle,
    };

    this.#uploads = new UploadRoutes({
      store: this.#store,
      activity: this.activity,
      discardData: this.#options.discardData,
      computeMd5: this.#options.computeMd5,
      url: () => this.#url,
      stage: (ex, context, request) => this.#stage(ex, context, request),
    });
    this.#objects = new ObjectRoutes(this.#store, (ex, context, chaosRequest) => this.#stage(ex, context, chaosRequest));
    this.#server = createServer((req, res) => this.#onRequest(req, res));
    // As GCS's front ends do: an idle connection is closed after a while, and clients must close theirs first.
    this.#server.keepAliveTimeout = this.#options.keepAliveTimeoutMs;
    this.#server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      this.#connections.opened += 1;
      let clientEnded = false;
      socket.once('end', () => {
        clientEnded = true;
      });
      socket.once('close', () => {
        this.#sockets.delete(socket);
        if (clientEnded) this.#connections.closedByClient += 1;
        else this.#connections.closedByServer += 1;
        this.activity.emit('change');
      });
    });
  }

  /** Starts a server listening on 127.0.0.1 (on `options.port`, else a free port). Same as {@link startLocalGcs}. */
  static async start(options: LocalGcsOptions = {}): Promise<LocalGcs> {
    const port = portOf('port', options.port);
    const grpcPort = portOf('grpcPort', options.grpcPort);
    const gcs = new LocalGcs(options);
    await new Promise<void>((resolve, reject) => {
      gcs.#server.once('error', reject);
      gcs.#server.listen(port, '127.0.0.1', () => {
        gcs.#server.off('error', reject);
        resolve();
      });
    });
    const address = gcs.#server.address();
    if (address === null || typeof address === 'string') throw new Error('local GCS server has no TCP address');
    gcs.#url = `http://127.0.0.1:${address.port}`;
    if (options.grpc === true) {
      try {
        gcs.#grpc = await LocalGcsGrpc.start(gcs.#store, gcs.activity, grpcPort);
      } catch (error) {
        await gcs.close(); // the HTTP side listens already
        throw error;
      }
    }
    return gcs;
  }

  /** The server's base URL, `http://127.0.0.1:PORT`: use it as the `apiEndpoint`. */
  get url(): string {
    return this.#url;
  }

  /**
   * The gRPC side (started with `grpc: true`): its `address` (`127.0.0.1:PORT`, the `grpcEndpoint`), the streams it
   * received, its scripted faults. Throws when the server was started without it.
   */
  get grpc(): LocalGcsGrpc {
    if (this.#grpc === undefined) throw new Error('the local server was started without grpc: true');
    return this.#grpc;
  }

  /** Connections accepted so far, and who closed those that ended (a copy). */
  get connections(): ConnectionStats {
    return { ...this.#connections };
  }

  /** Makes `bucket` exist, on a server started with a `buckets` list (where every other bucket is missing). */
  createBucket(bucket: string): void {
    if (!isValidBucketName(bucket)) throw new RangeError(`invalid bucket name: ${JSON.stringify(bucket)}`);
    this.#store.createBucket(bucket);
  }

  /** Every request received, in order of arrival. */
  get requests(): readonly RequestRecord[] {
    return this.#records;
  }

  /** How many faults (scripted and chaos) have fired. */
  get faultsInjected(): number {
    return this.#faultsInjected;
  }

  /**
   * What the per-connection bandwidth limit did (`connectionBytesPerSecond`): body bytes metered and how many times a
   * request was paused for it. Undefined when the server has no limit.
   */
  get throttleStats(): ThrottleStats | undefined {
    return this.#throttle?.stats;
  }

  /** How many sessions were opened. */
  get sessionCount(): number {
    return this.#uploads.sessions.length;
  }

  /** How many sessions were cancelled by a `DELETE`. */
  get cancelledSessions(): number {
    return this.#uploads.cancelledSessions;
  }

  /** How many scripted rules still have firings left. */
  get pendingFaults(): number {
    return this.#rules.pending;
  }

  /** Snapshots of every session, in the order their opens arrived (see `FaultMatch.session`). */
  listSessions(): SessionInfo[] {
    return this.#uploads.sessions.map((session) => session.info());
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
    const scope = {
      chaos: new Chaos(chaosOptions, this.#options.seed),
      ...(bucket === undefined ? {} : { bucket }),
      ...(object === undefined ? {} : { object }),
    };
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
      void this.#grpc?.close();
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
    const segments = url.pathname.split('/');
    if (url.pathname.startsWith('/upload/storage/v1/b/')) return this.#uploads.route(ex, url, segments);
    const download = url.pathname.startsWith('/download/storage/v1/b/');
    if (download || url.pathname.startsWith('/storage/v1/b/')) {
      ex.record.kind = 'object';
      // ['', 'storage', 'v1', 'b', BUCKET, 'o', NAME...] or ['', 'download', 'storage', 'v1', 'b', BUCKET, 'o', NAME...]
      return this.#objects.route(ex, url, segments.slice(download ? 5 : 4), download);
    }
    return ex.drainAndSend(errorOutcome(404, `Not found: ${url.pathname}`));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Faults

  /**
   * The scripted fault for this request, else a chaos fault (uploads and object API calls: `chaosRequest` is not
   * given for object reads), else none; counts and records it, and stages it.
   */
  #stage(ex: Exchange, context: FaultContext, chaosRequest?: ChaosRequest): FaultStage {
    let action = this.#rules.take(context);
    if (action === undefined && chaosRequest !== undefined) action = this.#chaosFor(context)?.pick(chaosRequest);
    if (action !== undefined) {
      this.#faultsInjected += 1;
      ex.record.fault = describeFault(action);
    }
    return new FaultStage(ex, action, this.activity);
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
}

/** Starts a local GCS server on 127.0.0.1 (on a free port unless `port` says). Close it with {@link LocalGcs.close}. */
export function startLocalGcs(options: LocalGcsOptions = {}): Promise<LocalGcs> {
  return LocalGcs.start(options);
}
