/**
 * Appendable objects of the local server's gRPC side: their persisted bytes, CRC32C, write handle and current
 * writer. Every persist republishes the object in the shared {@link ObjectStore} under the same generation, so that
 * the JSON API (metadata and media) serves exactly the persisted bytes of an unfinalized object, as GCS does.
 */
import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import type { ObjectContent, ObjectMetadata, ObjectStore } from './object-store.js';

/** A writer of an appendable object: what the store calls when another writer takes the object over. */
export interface AppendableWriter {
  /** Ends this writer's stream: another writer took over. */
  supersede(): void;
}

/** One appendable object, unfinalized or finalized. */
export class AppendableObject {
  readonly bucket: string;
  readonly name: string;
  readonly generation: string;
  readonly meta: ObjectMetadata;
  readonly #parts: Buffer[] = [];
  #size = 0;
  #crc32c = 0;
  #finalized = false;
  /** Rotated on every takeover, so that a superseded writer's handle no longer opens the object. */
  #handle = randomBytes(16);
  #writer: AppendableWriter | undefined;
  /** A routing token the next stream must present (set by a redirect), if any. */
  routingToken: string | undefined;

  constructor(bucket: string, name: string, generation: string, meta: ObjectMetadata) {
    this.bucket = bucket;
    this.name = name;
    this.generation = generation;
    this.meta = meta;
  }

  /** Bytes persisted (readable). */
  get size(): number {
    return this.#size;
  }

  /** Raw CRC32C of the persisted bytes. */
  get crc32c(): number {
    return this.#crc32c;
  }

  get finalized(): boolean {
    return this.#finalized;
  }

  get handle(): Buffer {
    return this.#handle;
  }

  /** Whether `writer` is the one allowed to write now. */
  owns(writer: AppendableWriter): boolean {
    return this.#writer === writer;
  }

  /** Makes `writer` the object's writer; the previous one, if still open, is superseded. */
  takeOver(writer: AppendableWriter, rotateHandle: boolean): void {
    const previous = this.#writer;
    this.#writer = writer;
    if (rotateHandle) this.#handle = randomBytes(16);
    if (previous !== undefined && previous !== writer) previous.supersede();
  }

  /** `writer` is gone (its stream ended or broke). */
  release(writer: AppendableWriter): void {
    if (this.#writer === writer) this.#writer = undefined;
  }

  /** Appends persisted bytes. */
  append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#parts.push(Buffer.from(bytes));
    this.#size += bytes.length;
    this.#crc32c = crc32c(bytes, this.#crc32c) >>> 0;
  }

  /** No more appends. */
  finalize(): void {
    this.#finalized = true;
  }

  /** The persisted content, as the object store holds it. */
  content(): ObjectContent {
    return { parts: [...this.#parts], size: this.#size, crc32c: this.#crc32c, discarded: false };
  }
}

/** The appendable objects, by bucket and name (the live generation only). */
export class AppendableStore {
  readonly #store: ObjectStore;
  readonly #objects = new Map<string, AppendableObject>();

  /** Appendable objects published into `store`. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** Creates a new appendable generation of `bucket/name` (empty, readable at once). */
  create(bucket: string, name: string, meta: ObjectMetadata): AppendableObject {
    const object = new AppendableObject(bucket, name, this.#store.nextGeneration(), meta);
    this.#objects.set(`${bucket}/${name}`, object);
    this.publish(object);
    return object;
  }

  /** The appendable object that is the live generation of `bucket/name`, if any. */
  get(bucket: string, name: string): AppendableObject | undefined {
    const object = this.#objects.get(`${bucket}/${name}`);
    // Replaced or deleted through the JSON API: no longer appendable.
    if (object !== undefined && this.#store.get(bucket, name)?.resource.generation !== object.generation) return undefined;
    return object;
  }

  /** Republishes the object's persisted bytes in the object store (same generation). */
  publish(object: AppendableObject): void {
    if (this.#store.get(object.bucket, object.name)?.resource.generation !== object.generation && object.size > 0) return;
    this.#store.create(object.bucket, object.name, object.content(), object.meta, object.generation, object.finalized);
  }
}
