/**
 * The gRPC side of the local server: `google.storage.v2.Storage/BidiWriteObject` for appendable objects, over
 * plain-text HTTP/2 on 127.0.0.1, sharing the JSON side's object store. Semantics follow the storage v2 proto:
 * create (`write_object_spec.appendable`) answers the generation and a write handle; `write_offset` must not pass
 * what the object holds plus what this stream sent; `flush` persists, `state_lookup` answers `persisted_size`;
 * `finish_write` finalizes, checking `object_checksums`; `append_object_spec` takes the object over (the previous
 * writer's stream fails with FAILED_PRECONDITION and its write handle stops working); a bad `checksummed_data.crc32c`
 * is INVALID_ARGUMENT. Bytes a stream sent but that were not persisted when it broke are lost, as they may be on GCS.
 * `BidiReadObject` is grpc-read.ts's.
 */
import type { EventEmitter } from 'node:events';
import type * as Grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import { loadStorageGrpc } from '../grpc/grpc-stack.js';
import { boolOf, bytesOf, int64Of, int64TextOf, stringOf } from '../grpc/proto3.js';
import { encodeRpcStatus, type WriteRedirect } from '../grpc/status-details.js';
import {
  bucketIdOf,
  bucketResourceName,
  GrpcCode,
  grpcCodeName,
  MAX_MESSAGE_CONTENT,
  type WireObject,
  type WireWriteRequest,
  type WireWriteResponse,
} from '../grpc/wire-types.js';
import { AppendableStore, type AppendableObject, type AppendableWriter } from './appendable-store.js';
import { GrpcFaultRules, type GrpcFaultContext, type GrpcFaultRule } from './grpc-faults.js';
import { withoutDefaultsOnTheWire } from './omit-defaults.js';
import { LocalGcsReads } from './grpc-read.js';
import { objectNameProblem, type ObjectStore } from './object-store.js';

/** One `BidiWriteObject` stream, as the local server saw it. */
export interface GrpcStreamRecord {
  /** 1-based, in order of arrival. */
  readonly index: number;
  /** What the first message asked for. */
  kind: 'create' | 'append' | 'unknown';
  bucket: string | undefined;
  object: string | undefined;
  /** `routing_token` from the `x-goog-request-params` metadata, if any. */
  routingToken: string | undefined;
  /** Data bytes received on the stream (before skipping already persisted ones). */
  bytesReceived: number;
  messages: number;
  /** How the stream ended: a gRPC status name, `cancelled` (by the client), or undefined while open. */
  status: string | undefined;
  /** The fault fired on this stream, if any. */
  fault: string | undefined;
}

type Call = Grpc.ServerDuplexStream<WireWriteRequest, WireWriteResponse>;

/** A failure answered as a gRPC status. */
class StatusFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly redirect?: WriteRedirect,
  ) {
    super(message);
  }
}

/** The bucket and object a first message names, for fault matching before it is processed. */
function targetOf(request: WireWriteRequest): { bucket: string | undefined; object: string | undefined } {
  if (request.write_object_spec !== undefined) {
    const resource = request.write_object_spec.resource;
    return { bucket: bucketIdOf(stringOf(resource?.bucket)), object: stringOf(resource?.name) };
  }
  return { bucket: bucketIdOf(stringOf(request.append_object_spec?.bucket)), object: stringOf(request.append_object_spec?.object) };
}

function routingTokenOf(metadata: Grpc.Metadata): string | undefined {
  for (const value of metadata.get('x-goog-request-params')) {
    const params = new URLSearchParams(String(value));
    const token = params.get('routing_token');
    if (token !== null) return token;
  }
  return undefined;
}

/** The object resource as storage v2 returns it (every field set: the serializer leaves out those that hold defaults). */
function wireObject(object: AppendableObject): WireObject {
  const resource: WireObject = {
    bucket: bucketResourceName(object.bucket),
    name: object.name,
    generation: object.generation,
    metageneration: '1',
    size: String(object.size),
    content_type: object.meta.contentType ?? 'application/octet-stream',
    checksums: { crc32c: object.crc32c },
  };
  if (object.meta.metadata !== undefined) resource.metadata = { ...object.meta.metadata };
  if (object.finalized) resource.finalize_time = { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 };
  return resource;
}

/** One open stream: its object, the bytes received but not yet persisted, and its end. */
class WriteStream implements AppendableWriter {
  readonly record: GrpcStreamRecord;
  object: AppendableObject | undefined;
  pending: Buffer[] = [];
  pendingSize = 0;
  done = false;
  /** A `stall` fault fired: the stream reads and answers nothing more. */
  stalled = false;
  readonly #call: Call;
  readonly #side: LocalGcsGrpc;

  constructor(call: Call, record: GrpcStreamRecord, side: LocalGcsGrpc) {
    this.#call = call;
    this.record = record;
    this.#side = side;
  }

  supersede(): void {
    this.fail(
      new StatusFailure(
        GrpcCode.FAILED_PRECONDITION,
        'Another writer took over the appendable object (append_object_spec); this stream is superseded.',
      ),
    );
  }

  /** The next offset this stream may write at. */
  get expected(): number {
    return (this.object?.size ?? 0) + this.pendingSize;
  }

  persist(): void {
    const object = this.object;
    if (object === undefined) return;
    for (const part of this.pending) object.append(part);
    this.pending = [];
    this.pendingSize = 0;
    this.#side.publish(object);
    // Waiters on the server's activity (tests, tools) see every persist.
    this.#side.changed();
  }

  respond(response: WireWriteResponse): void {
    if (!this.done && !this.stalled) this.#call.write(response);
  }

  /** Stops reading and answering; the stream stays open until the client cancels it. */
  stall(): void {
    this.stalled = true;
    this.#call.pause();
  }

  /** Ends the stream with OK. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.record.status = 'OK';
    this.object?.release(this);
    this.#call.end();
    this.#side.changed();
  }

  /** Ends the stream with an error status; unpersisted bytes are lost. */
  fail(failure: StatusFailure): void {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.pendingSize = 0;
    this.record.status = grpcCodeName(failure.code);
    this.object?.release(this);
    const { grpc } = loadStorageGrpc();
    const metadata = new grpc.Metadata();
    metadata.set('grpc-status-details-bin', encodeRpcStatus(failure.code, failure.message, failure.redirect));
    this.#call.emit('error', { code: failure.code, details: failure.message, metadata });
    this.#side.changed();
  }

  /** The client went away. */
  cancelled(): void {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.pendingSize = 0;
    this.record.status = 'cancelled';
    this.object?.release(this);
    this.#side.changed();
  }
}

/** The local gRPC server. Started by `startLocalGcs({ grpc: true })`; reach it through `LocalGcs`. */
export class LocalGcsGrpc {
  readonly #server: Grpc.Server;
  readonly #appendables: AppendableStore;
  readonly #objects: ObjectStore;
  readonly #activity: EventEmitter;
  readonly #rules = new GrpcFaultRules();
  readonly #records: GrpcStreamRecord[] = [];
  readonly #open = new Set<WriteStream>();
  readonly #reads: LocalGcsReads;
  #address = '';
  #faultsInjected = 0;

  private constructor(store: ObjectStore, activity: EventEmitter) {
    const { grpc, storageService, descriptor } = loadStorageGrpc();
    this.#objects = store;
    this.#appendables = new AppendableStore(store);
    this.#activity = activity;
    this.#server = new grpc.Server();
    this.#reads = new LocalGcsReads(store, this.#rules, () => this.changed());
    const handlers: Grpc.UntypedServiceImplementation = {
      BidiWriteObject: (call: Call) => this.#onStream(call),
      BidiReadObject: (call: Parameters<LocalGcsReads['serve']>[0]) => this.#reads.serve(call),
    };
    // Answers leave out default values, as GCS's do: see omit-defaults.ts.
    this.#server.addService(withoutDefaultsOnTheWire(storageService, descriptor, 'google.storage.v2.Storage'), handlers);
  }

  /** Starts listening on 127.0.0.1 on `port` (0: a free one), over `store`, announcing changes on `activity`. */
  static async start(store: ObjectStore, activity: EventEmitter, port = 0): Promise<LocalGcsGrpc> {
    const side = new LocalGcsGrpc(store, activity);
    const { grpc } = loadStorageGrpc();
    const bound = await new Promise<number>((resolve, reject) => {
      side.#server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
        error ? reject(error) : resolve(actual),
      );
    });
    side.#address = `127.0.0.1:${bound}`;
    return side;
  }

  /** `127.0.0.1:PORT`, for `grpcEndpoint` or `STORAGE_EMULATOR_HOST_GRPC`. */
  get address(): string {
    return this.#address;
  }

  /** Every stream received, in order. */
  get streams(): readonly GrpcStreamRecord[] {
    return this.#records;
  }

  /** The read side (`BidiReadObject`): its streams, bytes sent, and how it serves and cuts streams. */
  get reads(): LocalGcsReads {
    return this.#reads;
  }

  get faultsInjected(): number {
    return this.#faultsInjected + this.#reads.faultsInjected;
  }

  get pendingFaults(): number {
    return this.#rules.pending;
  }

  inject(rule: GrpcFaultRule): void {
    this.#rules.add(rule);
  }

  clearFaults(): void {
    this.#rules.clear();
  }

  /** The appendable state of an object (unfinalized or finalized), if it is one. */
  appendable(bucket: string, name: string): { size: number; finalized: boolean; generation: string } | undefined {
    const object = this.#appendables.get(bucket, name);
    return object === undefined ? undefined : { size: object.size, finalized: object.finalized, generation: object.generation };
  }

  /** Stops the server at once: open streams are cut. */
  async close(): Promise<void> {
    for (const stream of this.#open) stream.cancelled();
    this.#reads.close();
    this.#server.forceShutdown();
    await Promise.resolve();
  }

  /** Republishes an object's persisted bytes for the JSON side. */
  publish(object: AppendableObject): void {
    this.#appendables.publish(object);
  }

  changed(): void {
    this.#activity.emit('change');
  }

  #onStream(call: Call): void {
    const record: GrpcStreamRecord = {
      index: this.#records.length + 1,
      kind: 'unknown',
      bucket: undefined,
      object: undefined,
      routingToken: routingTokenOf(call.metadata),
      bytesReceived: 0,
      messages: 0,
      status: undefined,
      fault: undefined,
    };
    this.#records.push(record);
    const stream = new WriteStream(call, record, this);
    this.#open.add(stream);
    this.changed();
    call.on('data', (request: WireWriteRequest) => {
      if (stream.done || stream.stalled) return;
      try {
        this.#onMessage(stream, request);
      } catch (error) {
        stream.fail(error instanceof StatusFailure ? error : new StatusFailure(GrpcCode.INTERNAL, `Internal error: ${String(error)}`));
      }
    });
    call.on('end', () => {
      if (stream.stalled) return;
      // The client closed its side without finish_write: persist and answer, as the proto promises.
      if (!stream.done && stream.object !== undefined) {
        stream.persist();
        stream.respond({ persisted_size: String(stream.object.size), write_handle: { handle: stream.object.handle } });
      }
      stream.end();
      this.#open.delete(stream);
    });
    call.on('cancelled', () => {
      stream.cancelled();
      this.#open.delete(stream);
    });
    call.on('error', () => {
      stream.cancelled();
      this.#open.delete(stream);
    });
  }

  #onMessage(stream: WriteStream, request: WireWriteRequest): void {
    const first = stream.record.messages === 0;
    stream.record.messages += 1;
    if (first) {
      // A status fault on a first message refuses it before anything is created or taken over.
      const target = targetOf(request);
      stream.record.bucket = target.bucket;
      stream.record.object = target.object;
      if (request.write_object_spec !== undefined) stream.record.kind = 'create';
      else if (request.append_object_spec !== undefined) stream.record.kind = 'append';
      const early = this.#rules.peek({ ...target, stream: stream.record.index, first, start: 0, end: 0 });
      if (early?.type === 'status') this.#fire(stream, { ...target, stream: stream.record.index, first, start: 0, end: 0 });
      this.#openStream(stream, request);
    } else if (request.first_message !== undefined)
      throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, 'Only the first message of a stream may carry a write or append spec.');
    const object = stream.object;
    if (object === undefined) throw new StatusFailure(GrpcCode.INTERNAL, 'no object');
    if (!object.owns(stream)) throw new StatusFailure(GrpcCode.FAILED_PRECONDITION, 'Another writer took over the appendable object.');
    if (object.finalized) throw new StatusFailure(GrpcCode.FAILED_PRECONDITION, 'The object is finalized; nothing more can be written.');

    const offset = int64Of(request.write_offset);
    let content = bytesOf(request.checksummed_data?.content);
    stream.record.bytesReceived += content.length;
    if (first && content.length > 0 && offset !== object.size) {
      throw new StatusFailure(GrpcCode.OUT_OF_RANGE, `The first write_offset must be the persisted size ${object.size}, got ${offset}.`);
    }
    if (offset > stream.expected) {
      throw new StatusFailure(
        GrpcCode.OUT_OF_RANGE,
        `write_offset ${offset} is past the ${stream.expected} bytes persisted and sent on this stream.`,
      );
    }
    if (content.length > MAX_MESSAGE_CONTENT) {
      throw new StatusFailure(
        GrpcCode.INVALID_ARGUMENT,
        `A message may carry at most ${MAX_MESSAGE_CONTENT} bytes of content, got ${content.length}.`,
      );
    }
    const expectedCrc = request.checksummed_data?.crc32c;
    if (expectedCrc !== undefined && crc32c(content) >>> 0 !== expectedCrc >>> 0) {
      throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, `The crc32c of the message's content does not match (at write_offset ${offset}).`);
    }

    const context = {
      bucket: object.bucket,
      object: object.name,
      stream: stream.record.index,
      first,
      start: offset,
      end: offset + content.length,
    };
    const fault = this.#rules.take(context);
    if (fault !== undefined) {
      this.#faultsInjected += 1;
      stream.record.fault = fault.action.type === 'status' ? `status ${fault.action.status}` : fault.action.type;
      const { action } = fault;
      if (action.type === 'break' || action.type === 'stall') {
        const keep = fault.offset === undefined ? 0 : Math.max(0, fault.offset - offset);
        this.#accept(stream, offset, content.subarray(0, keep));
        stream.persist();
        if (action.type === 'break') throw new StatusFailure(GrpcCode.UNAVAILABLE, 'The connection was reset (injected fault).');
        stream.stall();
        return;
      }
      if (action.type === 'status') {
        throw new StatusFailure(GrpcCode[action.status], `Injected ${action.status}.`);
      }
      if (action.type === 'corrupt') throw new StatusFailure(GrpcCode.INTERNAL, 'A corrupt fault applies to read streams only.');
      const token = action.routingToken ?? `route-${stream.record.index}`;
      object.routingToken = token;
      throw new StatusFailure(GrpcCode.ABORTED, 'The write must be retried elsewhere (redirect).', {
        routingToken: token,
        writeHandle: object.handle,
        generation: object.generation,
      });
    }

    // Data already persisted or already sent on this stream is skipped, as the proto allows.
    content = this.#accept(stream, offset, content);

    if (boolOf(request.finish_write)) {
      stream.persist();
      const wanted = request.object_checksums?.crc32c;
      if (wanted !== undefined && wanted >>> 0 !== object.crc32c) {
        throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, 'The object_checksums.crc32c does not match the object; it was not finalized.');
      }
      object.finalize();
      this.publish(object);
      stream.respond({ resource: wireObject(object) });
      stream.end();
      return;
    }
    if (boolOf(request.flush)) stream.persist();
    // GCS gives the CRC32C of the persisted bytes with the resource too (Google's clients start a takeover's running
    // checksum from it).
    if (first) {
      stream.respond({
        resource: wireObject(object),
        persisted_data_checksums: { crc32c: object.crc32c },
        write_handle: { handle: object.handle },
      });
    } else if (boolOf(request.state_lookup)) {
      stream.respond({
        persisted_size: String(object.size),
        persisted_data_checksums: { crc32c: object.crc32c },
        write_handle: { handle: object.handle },
      });
    }
  }

  /** Fires the status fault that matches `context` (a first message, before its object is opened). */
  #fire(stream: WriteStream, context: GrpcFaultContext): never {
    const fault = this.#rules.take(context);
    if (fault?.action.type !== 'status') throw new StatusFailure(GrpcCode.INTERNAL, 'fault rules changed');
    this.#faultsInjected += 1;
    stream.record.fault = `status ${fault.action.status}`;
    throw new StatusFailure(GrpcCode[fault.action.status], `Injected ${fault.action.status}.`);
  }

  /** Takes the bytes of a data message that are new to the object; returns them. */
  #accept(stream: WriteStream, offset: number, content: Buffer): Buffer {
    const skip = stream.expected - offset;
    const fresh = skip > 0 ? content.subarray(Math.min(skip, content.length)) : content;
    if (fresh.length > 0) {
      stream.pending.push(Buffer.from(fresh));
      stream.pendingSize += fresh.length;
    }
    return fresh;
  }

  /** The first message: create the object, or take an existing one over. */
  #openStream(stream: WriteStream, request: WireWriteRequest): void {
    const record = stream.record;
    if (request.write_object_spec !== undefined) {
      record.kind = 'create';
      const spec = request.write_object_spec;
      const bucket = bucketIdOf(stringOf(spec.resource?.bucket));
      const name = stringOf(spec.resource?.name);
      record.bucket = bucket;
      record.object = name;
      if (bucket === undefined) throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, 'resource.bucket must be projects/_/buckets/BUCKET.');
      const problem = objectNameProblem(name);
      if (problem !== undefined) throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, problem);
      if (spec.appendable !== true) {
        throw new StatusFailure(
          GrpcCode.UNIMPLEMENTED,
          'The local server implements BidiWriteObject for appendable objects only (write_object_spec.appendable).',
        );
      }
      if (spec.if_generation_match !== undefined) {
        const failed = this.#objects.preconditionProblem(bucket, name, { ifGenerationMatch: spec.if_generation_match });
        if (failed !== undefined) throw new StatusFailure(GrpcCode.FAILED_PRECONDITION, failed);
      }
      const contentType = stringOf(spec.resource?.content_type);
      const meta = {
        ...(contentType !== '' ? { contentType } : {}),
        ...(spec.resource?.metadata && Object.keys(spec.resource.metadata).length > 0 ? { metadata: { ...spec.resource.metadata } } : {}),
      };
      const object = this.#appendables.create(bucket, name, meta);
      object.takeOver(stream, false);
      stream.object = object;
      return;
    }
    if (request.append_object_spec !== undefined) {
      record.kind = 'append';
      const spec = request.append_object_spec;
      const bucket = bucketIdOf(stringOf(spec.bucket));
      const name = stringOf(spec.object);
      const generation = int64TextOf(spec.generation);
      record.bucket = bucket;
      record.object = name;
      if (bucket === undefined) throw new StatusFailure(GrpcCode.INVALID_ARGUMENT, 'bucket must be projects/_/buckets/BUCKET.');
      const object = this.#appendables.get(bucket, name);
      if (object === undefined || object.generation !== generation) {
        throw new StatusFailure(GrpcCode.NOT_FOUND, `No appendable object ${bucket}/${name} of generation ${generation}.`);
      }
      if (object.finalized) throw new StatusFailure(GrpcCode.FAILED_PRECONDITION, 'The object is finalized; it cannot be appended to.');
      if (object.routingToken !== undefined) {
        if (record.routingToken !== object.routingToken && spec.routing_token !== object.routingToken) {
          throw new StatusFailure(
            GrpcCode.FAILED_PRECONDITION,
            'The stream lacks the routing token of the redirect (x-goog-request-params routing_token).',
          );
        }
        object.routingToken = undefined;
      }
      const handle = spec.write_handle === undefined ? undefined : bytesOf(spec.write_handle.handle);
      if (handle !== undefined && handle.length > 0 && !handle.equals(object.handle)) {
        throw new StatusFailure(GrpcCode.FAILED_PRECONDITION, 'The write handle is stale: another writer took the object over.');
      }
      object.takeOver(stream, true);
      stream.object = object;
      return;
    }
    throw new StatusFailure(
      request.upload_id === undefined ? GrpcCode.INVALID_ARGUMENT : GrpcCode.UNIMPLEMENTED,
      request.upload_id === undefined
        ? 'The first message must carry write_object_spec or append_object_spec.'
        : 'Resumable gRPC writes (upload_id) are not implemented by the local server.',
    );
  }
}
