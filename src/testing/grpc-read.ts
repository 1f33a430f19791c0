/**
 * `google.storage.v2.Storage/BidiReadObject` on the local server, over the shared object store: any object (an
 * appendable one while it grows, or an ordinary JSON-uploaded one). Semantics follow the storage v2 proto: the first
 * message's `read_object_spec` names the object (a generation, else the live one; NOT_FOUND otherwise); the first
 * response carries the object's `metadata` (generation, size so far, `finalize_time` once finalized) unless the stream
 * was opened with a valid read handle, and a `read_handle`; each `read_ranges` entry is answered in messages of at most
 * 2 MiB with their CRC32C, the last with `range_end`; `read_length` 0 reads to the current end; an offset beyond the
 * size is OUT_OF_RANGE and ends the stream. Default values are left off the wire, as real servers do.
 *
 * Sending waits for gRPC's room to send, so a reader that stops reading stops the server (the count of bytes sent
 * shows it). The server can cut streams (`streamLifetimeMs`, `maxMessagesPerStream`, as GCS's conformance server cuts
 * read streams every 10 s) and serve each stream as a snapshot of the object when it opened (`snapshot`).
 */
import { randomBytes } from 'node:crypto';
import type * as Grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import { loadStorageGrpc } from '../grpc/grpc-stack.js';
import type { WireObjectRangeData, WireReadRange, WireReadRequest, WireReadResponse } from '../grpc/read-wire-types.js';
import { encodeReadRedirectStatus, encodeRpcStatus } from '../grpc/status-details.js';
import { bucketIdOf, bucketResourceName, GrpcCode, grpcCodeName, MAX_MESSAGE_CONTENT, type WireObject } from '../grpc/wire-types.js';
import type { GrpcFaultContext, GrpcFaultRules } from './grpc-faults.js';
import type { LocalObject, ObjectStore } from './object-store.js';

/** How the local server serves read streams. */
export interface LocalReadOptions {
  /** Cut every read stream (UNAVAILABLE) this long after it opened; default Infinity (never). */
  streamLifetimeMs?: number;
  /** Cut every read stream (UNAVAILABLE) after it sent this many data messages; default Infinity. */
  maxMessagesPerStream?: number;
  /** Serve each stream from the object as it was when the stream opened (it never sees growth); default false. */
  snapshot?: boolean;
}

/** One `BidiReadObject` stream, as the local server saw it. */
export interface ReadStreamRecord {
  /** 1-based, in order of arrival (read streams only). */
  readonly index: number;
  bucket: string | undefined;
  object: string | undefined;
  /** The generation served. */
  generation: string | undefined;
  /** Whether the stream opened with a valid read handle (its first response then carries no metadata). */
  withHandle: boolean;
  /** `routing_token` from `x-goog-request-params`, if any. */
  routingToken: string | undefined;
  /** The ranges asked for, in order (`read_length` 0: to the end). */
  ranges: { offset: number; length: number }[];
  /** Ranges answered to their `range_end`. */
  rangesDone: number;
  /** Content bytes sent. */
  bytesSent: number;
  /** How the stream ended: a gRPC status name, `cancelled` (by the client), or undefined while open. */
  status: string | undefined;
  /** The fault fired on this stream, if any. */
  fault: string | undefined;
}

type Call = Grpc.ServerDuplexStream<WireReadRequest, WireReadResponse>;

class ReadFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly redirect?: { routingToken: string; readHandle: Buffer },
  ) {
    super(message);
  }
}

function routingTokenOf(metadata: Grpc.Metadata): string | undefined {
  for (const value of metadata.get('x-goog-request-params')) {
    const token = new URLSearchParams(String(value)).get('routing_token');
    if (token !== null) return token;
  }
  return undefined;
}

function timestamp(iso: string): { seconds: string; nanos?: number } {
  const ms = Date.parse(iso);
  const nanos = (ms % 1000) * 1_000_000;
  return nanos === 0 ? { seconds: String(Math.floor(ms / 1000)) } : { seconds: String(Math.floor(ms / 1000)), nanos };
}

/** The object's metadata as storage v2 sends it, defaults left off. */
function wireMetadata(object: LocalObject): WireObject {
  const r = object.resource;
  const metadata: WireObject = {
    bucket: bucketResourceName(r.bucket),
    name: r.name,
    generation: r.generation,
    metageneration: r.metageneration,
    content_type: r.contentType,
    create_time: timestamp(r.timeCreated),
  };
  if (object.size > 0) metadata.size = String(object.size);
  if (r.metadata !== undefined && Object.keys(r.metadata).length > 0) metadata.metadata = { ...r.metadata };
  // A complete object's checksums; an unfinalized appendable object has none yet.
  if (r.timeFinalized !== undefined) {
    metadata.finalize_time = timestamp(r.timeFinalized);
    metadata.checksums = { crc32c: Buffer.from(r.crc32c, 'base64').readUInt32BE(0) };
  }
  return metadata;
}

/** One open read stream. */
class ReadStream {
  readonly record: ReadStreamRecord;
  readonly #call: Call;
  readonly #reads: LocalGcsReads;
  /** The object served: fixed at open in snapshot mode, else looked up again for each range. */
  #snapshot: LocalObject | undefined;
  #queue: { offset: number; length: number; id: string }[] = [];
  #serving = false;
  /** The ranges being served; settles when the queue is empty. */
  #served: Promise<void> = Promise.resolve();
  /** Wakes a send waiting for room when the stream ends. */
  #wakeSend: (() => void) | undefined;
  #messages = 0;
  done = false;
  stalled = false;
  #lifetime: NodeJS.Timeout | undefined;

  constructor(call: Call, record: ReadStreamRecord, reads: LocalGcsReads) {
    this.#call = call;
    this.record = record;
    this.#reads = reads;
  }

  get messages(): number {
    return this.#messages;
  }

  /** Arms the lifetime cut. */
  startLifetime(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.#lifetime = setTimeout(
      () => this.fail(new ReadFailure(GrpcCode.UNAVAILABLE, 'The read stream reached its lifetime; reopen it.')),
      ms,
    );
  }

  setSnapshot(object: LocalObject): void {
    this.#snapshot = object;
  }

  /** The object to serve now; NOT_FOUND once the generation is no longer live (live mode). */
  current(): LocalObject {
    if (this.#snapshot !== undefined) return this.#snapshot;
    const live = this.#reads.lookup(this.record.bucket ?? '', this.record.object ?? '');
    if (live === undefined || live.resource.generation !== this.record.generation) {
      throw new ReadFailure(
        GrpcCode.NOT_FOUND,
        `Generation ${this.record.generation ?? '?'} of ${this.record.object ?? '?'} no longer exists.`,
      );
    }
    return live;
  }

  enqueue(ranges: readonly WireReadRange[]): void {
    for (const range of ranges) {
      const offset = Number(range.read_offset ?? '0');
      const length = Number(range.read_length ?? '0');
      this.record.ranges.push({ offset, length });
      this.#queue.push({ offset, length, id: range.read_id ?? '0' });
    }
    if (!this.#serving) this.#served = this.#serve();
  }

  async #serve(): Promise<void> {
    this.#serving = true;
    try {
      while (!this.done && !this.stalled && this.#queue.length > 0) {
        const range = this.#queue.shift()!;
        await this.#serveRange(range);
        if (!this.done && !this.stalled) {
          this.record.rangesDone += 1;
          this.#reads.changed();
        }
      }
    } catch (error) {
      this.fail(error instanceof ReadFailure ? error : new ReadFailure(GrpcCode.INTERNAL, `Internal error: ${String(error)}`));
    } finally {
      this.#serving = false;
    }
  }

  async #serveRange(range: { offset: number; length: number; id: string }): Promise<void> {
    const object = this.current();
    const size = object.size;
    if (range.length < 0) throw new ReadFailure(GrpcCode.OUT_OF_RANGE, `read_length must not be negative, got ${range.length}.`);
    // A negative offset counts back from the end.
    const start = range.offset < 0 ? Math.max(0, size + range.offset) : range.offset;
    if (start > size) throw new ReadFailure(GrpcCode.OUT_OF_RANGE, `read_offset ${start} is beyond the object's ${size} bytes.`);
    const end = range.length === 0 ? size : Math.min(size, start + range.length);
    let position = start;
    do {
      const pieceEnd = Math.min(end, position + MAX_MESSAGE_CONTENT);
      const context: GrpcFaultContext = {
        method: 'read',
        bucket: this.record.bucket,
        object: this.record.object,
        stream: this.record.index,
        first: false,
        start: position,
        end: pieceEnd,
      };
      const fault = pieceEnd > position ? this.#reads.takeFault(context, this.record) : undefined;
      let corrupt = false;
      if (fault !== undefined) {
        const { action } = fault;
        if (action.type === 'status') throw new ReadFailure(GrpcCode[action.status], `Injected ${action.status}.`);
        if (action.type === 'redirect') throw this.#reads.redirect(this, action.routingToken);
        if (action.type === 'corrupt') corrupt = true;
        else {
          // break and stall: the bytes before the rule's offset go out first.
          const send = Math.max(position, Math.min(pieceEnd, fault.offset ?? position));
          if (send > position) await this.#sendPiece(object, range, position, send, false, false);
        }
        if (action.type === 'break') throw new ReadFailure(GrpcCode.UNAVAILABLE, 'The connection was reset (injected fault).');
        if (action.type === 'stall') {
          this.stall();
          return;
        }
      }
      if (fault === undefined || corrupt) await this.#sendPiece(object, range, position, pieceEnd, pieceEnd === end, corrupt);
      position = pieceEnd;
      if (this.done) return;
    } while (position < end);
  }

  async #sendPiece(
    object: LocalObject,
    range: { offset: number; id: string },
    start: number,
    end: number,
    last: boolean,
    corrupt: boolean,
  ): Promise<void> {
    // One stored piece is sent as it is (a view); several, or a corrupted copy, are joined into a new buffer.
    const pieces = object.slice(start, end);
    const content = pieces.length === 1 && !corrupt ? pieces[0]! : Buffer.concat(pieces);
    const data: WireObjectRangeData = { read_range: {} };
    if (content.length > 0) {
      const crc = crc32c(content) >>> 0;
      if (corrupt) content[content.length >> 1] = (content[content.length >> 1] ?? 0) ^ 0xff;
      data.checksummed_data = { content, crc32c: crc };
    }
    const readRange: WireReadRange = {};
    if (start !== 0) readRange.read_offset = String(start);
    if (content.length > 0) readRange.read_length = String(content.length);
    if (range.id !== '0') readRange.read_id = range.id;
    data.read_range = readRange;
    if (last) data.range_end = true;
    if (this.done || this.stalled) return;
    this.record.bytesSent += content.length;
    this.#reads.sent(content.length);
    this.#messages += 1;
    const room = this.#call.write({ object_data_ranges: [data] });
    if (content.length > 0 && this.#messages >= this.#reads.options.maxMessagesPerStream && !last) {
      throw new ReadFailure(GrpcCode.UNAVAILABLE, 'The server cut the read stream; reopen it.');
    }
    if (!room) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#call.off('drain', wake);
          this.#wakeSend = undefined;
          resolve();
        };
        this.#wakeSend = wake;
        this.#call.once('drain', wake);
      });
    }
  }

  respond(response: WireReadResponse): void {
    if (!this.done && !this.stalled) this.#call.write(response);
  }

  stall(): void {
    this.stalled = true;
    this.#call.pause();
    this.#reads.changed();
  }

  fail(failure: ReadFailure): void {
    if (this.done) return;
    this.done = true;
    this.#stop();
    this.record.status = grpcCodeName(failure.code);
    const { grpc } = loadStorageGrpc();
    const metadata = new grpc.Metadata();
    metadata.set(
      'grpc-status-details-bin',
      failure.redirect === undefined
        ? encodeRpcStatus(failure.code, failure.message)
        : encodeReadRedirectStatus(failure.code, failure.message, failure.redirect),
    );
    this.#call.emit('error', { code: failure.code, details: failure.message, metadata });
    this.#reads.changed();
  }

  /** The client half-closed: finish what was asked, then end with OK. */
  async ended(): Promise<void> {
    await this.#served;
    if (this.done || this.stalled) return;
    this.done = true;
    this.#stop();
    this.record.status = 'OK';
    this.#call.end();
    this.#reads.changed();
  }

  cancelled(): void {
    if (this.done) return;
    this.done = true;
    this.#stop();
    this.record.status = 'cancelled';
    this.#reads.changed();
  }

  #stop(): void {
    if (this.#lifetime !== undefined) clearTimeout(this.#lifetime);
    this.#queue = [];
    this.#wakeSend?.();
    this.#reads.closed(this);
  }
}

/**
 * The read side of the local gRPC server; reach it as `localGcs.grpc.reads`. Its fault rules are the gRPC side's
 * (`localGcs.grpc.inject({ match: { method: 'read', ... }, action })`).
 */
export class LocalGcsReads {
  readonly #objects: ObjectStore;
  readonly #rules: GrpcFaultRules;
  readonly #onChange: () => void;
  readonly #records: ReadStreamRecord[] = [];
  readonly #open = new Set<ReadStream>();
  /** Read handles by `bucket/name#generation`. */
  readonly #handles = new Map<string, Buffer>();
  /** Routing tokens a redirect requires of the next stream, by `bucket/name`. */
  readonly #routes = new Map<string, string>();
  #options: Readonly<Required<LocalReadOptions>> = { streamLifetimeMs: Infinity, maxMessagesPerStream: Infinity, snapshot: false };
  #bytesSent = 0;
  #faultsInjected = 0;

  /** Serves reads of `objects`, with `rules`; `onChange` is told of every change (for tests awaiting the server). */
  constructor(objects: ObjectStore, rules: GrpcFaultRules, onChange: () => void) {
    this.#objects = objects;
    this.#rules = rules;
    this.#onChange = onChange;
  }

  /** Changes how later streams are served (and cut); options not given keep their value. */
  configure(options: LocalReadOptions): void {
    const next = { ...this.#options, ...options };
    for (const key of ['streamLifetimeMs', 'maxMessagesPerStream'] as const) {
      if (!(next[key] > 0)) throw new RangeError(`${key} must be positive, got ${next[key]}`);
    }
    this.#options = Object.freeze(next);
  }

  /** The current options. */
  get options(): Readonly<Required<LocalReadOptions>> {
    return this.#options;
  }

  /** Every read stream received, in order. */
  get streams(): readonly ReadStreamRecord[] {
    return this.#records;
  }

  /** Content bytes sent on all read streams. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Read faults fired. */
  get faultsInjected(): number {
    return this.#faultsInjected;
  }

  /** Cuts every open read stream (UNAVAILABLE), as a server may at any time. */
  cutAll(): void {
    for (const stream of [...this.#open]) stream.fail(new ReadFailure(GrpcCode.UNAVAILABLE, 'The server cut the read stream; reopen it.'));
  }

  /** Ends every open stream (the server is closing). */
  close(): void {
    for (const stream of [...this.#open]) stream.cancelled();
  }

  /** The `BidiReadObject` handler. */
  serve(call: Call): void {
    const record: ReadStreamRecord = {
      index: this.#records.length + 1,
      bucket: undefined,
      object: undefined,
      generation: undefined,
      withHandle: false,
      routingToken: routingTokenOf(call.metadata),
      ranges: [],
      rangesDone: 0,
      bytesSent: 0,
      status: undefined,
      fault: undefined,
    };
    this.#records.push(record);
    const stream = new ReadStream(call, record, this);
    this.#open.add(stream);
    let first = true;
    call.on('data', (request: WireReadRequest) => {
      if (stream.done || stream.stalled) return;
      try {
        if (first) {
          first = false;
          this.#open1(stream, request);
        } else if (request.read_object_spec !== undefined) {
          throw new ReadFailure(GrpcCode.INVALID_ARGUMENT, 'Only the first message of a stream may carry read_object_spec.');
        }
        if (request.read_ranges !== undefined && request.read_ranges.length > 0) stream.enqueue(request.read_ranges);
      } catch (error) {
        stream.fail(error instanceof ReadFailure ? error : new ReadFailure(GrpcCode.INTERNAL, `Internal error: ${String(error)}`));
      }
    });
    call.on('end', () => void stream.ended());
    call.on('cancelled', () => stream.cancelled());
    call.on('error', () => stream.cancelled());
    this.changed();
  }

  /** The live object `bucket/name`. */
  lookup(bucket: string, name: string): LocalObject | undefined {
    return this.#objects.get(bucket, name);
  }

  /** A matching read fault, counted and recorded on `record`. */
  takeFault(context: GrpcFaultContext, record: ReadStreamRecord): ReturnType<GrpcFaultRules['take']> {
    const fault = this.#rules.take(context);
    if (fault !== undefined) {
      this.#faultsInjected += 1;
      record.fault = fault.action.type === 'status' ? `status ${fault.action.status}` : fault.action.type;
      this.changed();
    }
    return fault;
  }

  /** The failure that redirects `stream`'s reader: the object's next stream must carry the routing token. */
  redirect(stream: ReadStream, routingToken: string | undefined): ReadFailure {
    const { bucket = '', object = '', generation = '' } = stream.record;
    const token = routingToken ?? `read-route-${stream.record.index}`;
    this.#routes.set(`${bucket}/${object}`, token);
    return new ReadFailure(GrpcCode.ABORTED, 'The read must be retried elsewhere (redirect).', {
      routingToken: token,
      readHandle: this.#handleOf(bucket, object, generation),
    });
  }

  sent(bytes: number): void {
    this.#bytesSent += bytes;
  }

  closed(stream: ReadStream): void {
    this.#open.delete(stream);
  }

  changed(): void {
    this.#onChange();
  }

  #handleOf(bucket: string, name: string, generation: string): Buffer {
    const key = `${bucket}/${name}#${generation}`;
    let handle = this.#handles.get(key);
    if (handle === undefined) {
      handle = randomBytes(16);
      this.#handles.set(key, handle);
    }
    return handle;
  }

  /** The first message: find the object, answer its metadata (unless opened with its read handle) and a handle. */
  #open1(stream: ReadStream, request: WireReadRequest): void {
    const record = stream.record;
    const spec = request.read_object_spec;
    if (spec === undefined) throw new ReadFailure(GrpcCode.INVALID_ARGUMENT, 'The first message must carry read_object_spec.');
    const bucket = bucketIdOf(spec.bucket);
    record.bucket = bucket;
    record.object = spec.object;
    if (bucket === undefined) throw new ReadFailure(GrpcCode.INVALID_ARGUMENT, 'bucket must be projects/_/buckets/BUCKET.');
    if (!spec.object) throw new ReadFailure(GrpcCode.INVALID_ARGUMENT, 'object is required.');
    const context: GrpcFaultContext = { method: 'read', bucket, object: spec.object, stream: record.index, first: true, start: 0, end: 0 };
    const early = this.#rules.peek(context);
    if (early !== undefined && early.type !== 'corrupt') {
      const fault = this.takeFault(context, record);
      if (fault?.action.type === 'status') throw new ReadFailure(GrpcCode[fault.action.status], `Injected ${fault.action.status}.`);
      if (fault?.action.type === 'break') throw new ReadFailure(GrpcCode.UNAVAILABLE, 'The connection was reset (injected fault).');
      if (fault?.action.type === 'stall') {
        stream.stall();
        return;
      }
    }
    const route = this.#routes.get(`${bucket}/${spec.object}`);
    if (route !== undefined) {
      if (record.routingToken !== route && spec.routing_token !== route) {
        throw new ReadFailure(
          GrpcCode.FAILED_PRECONDITION,
          'The stream lacks the routing token of the redirect (x-goog-request-params routing_token).',
        );
      }
      this.#routes.delete(`${bucket}/${spec.object}`);
    }
    const live = this.#objects.get(bucket, spec.object);
    const wanted = spec.generation !== undefined && spec.generation !== '0' ? spec.generation : undefined;
    if (live === undefined || (wanted !== undefined && live.resource.generation !== wanted)) {
      throw new ReadFailure(GrpcCode.NOT_FOUND, `No such object: ${bucket}/${spec.object}${wanted === undefined ? '' : `#${wanted}`}.`);
    }
    record.generation = live.resource.generation;
    if (early?.type === 'redirect') throw this.redirect(stream, early.routingToken);
    if (this.#options.snapshot) stream.setSnapshot(live);
    stream.startLifetime(this.#options.streamLifetimeMs);
    const handle = this.#handleOf(bucket, spec.object, record.generation);
    const given = spec.read_handle?.handle;
    record.withHandle = given !== undefined && given.equals(handle);
    // GCS leaves the metadata out of the first response of a stream opened with a read handle.
    stream.respond(record.withHandle ? { read_handle: { handle } } : { metadata: wireMetadata(live), read_handle: { handle } });
  }
}
