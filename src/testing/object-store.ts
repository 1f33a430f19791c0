/**
 * The in-memory object store of the local GCS server: buckets (created implicitly), objects and their generations,
 * object resources as the JSON API returns them, and precondition checks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';

/** An object resource, as the GCS JSON API returns it (`storage#object`). */
export interface ObjectResource extends Omit<ObjectMetadata, 'contentType' | 'storageClass'> {
  kind: 'storage#object';
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  contentType: string;
  size: string;
  /** Base64 of the MD5 digest; absent when the server was started with `computeMd5: false`. */
  md5Hash?: string;
  /** Base64 of the big-endian CRC32C. */
  crc32c: string;
  etag: string;
  timeCreated: string;
  updated: string;
  timeStorageClassUpdated: string;
  /** When the object was finalized; absent while an appendable object is still unfinalized (as in GCS). */
  timeFinalized?: string;
  storageClass: string;
  /** Set on composite objects only: how many non-composite objects it is made of (see `compose`). */
  componentCount?: number;
}

/** The writable fields of an object, as given when a session is opened or an object is seeded. */
export interface ObjectMetadata {
  contentType?: string;
  /** Custom metadata (`x-goog-meta-*`). */
  metadata?: Record<string, string>;
  cacheControl?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  customTime?: string;
  storageClass?: string;
  kmsKeyName?: string;
}

/** An object held by the local server. */
export interface StoredObject {
  readonly bucket: string;
  readonly name: string;
  /** The object's bytes (empty when the server discards data, see `discardData`). */
  readonly data: Buffer;
  /** The object resource, as the JSON API returns it. */
  readonly resource: ObjectResource;
}

/** GCS preconditions, as query parameter strings. */
export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

/** The names of {@link Preconditions}, as they appear in query strings. */
export const PRECONDITION_NAMES = [
  'ifGenerationMatch',
  'ifGenerationNotMatch',
  'ifMetagenerationMatch',
  'ifMetagenerationNotMatch',
] as const;

/** The finished content of an upload: its bytes (unless discarded), size and checksums. */
export interface ObjectContent {
  /** The bytes, in order; empty when they were discarded. */
  parts: readonly Buffer[];
  size: number;
  /** CRC32C of all the bytes. */
  crc32c: number;
  /** MD5 digest of all the bytes, unless MD5 is not computed. */
  md5?: Buffer;
  /** True when `parts` does not hold the bytes (only size and checksums were kept). */
  discarded: boolean;
}

/** Base64 of a CRC32C as a big-endian 32-bit integer, as GCS prints it. */
export function crc32cToBase64(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0, 0);
  return bytes.toString('base64');
}

/** Computes the {@link ObjectContent} of a buffer held in memory. */
export function contentOf(data: Buffer, computeMd5 = true): ObjectContent {
  return {
    parts: data.length > 0 ? [data] : [],
    size: data.length,
    crc32c: crc32c(data),
    md5: computeMd5 ? createHash('md5').update(data).digest() : undefined,
    discarded: false,
  };
}

/** A stored object; the bytes are joined into one buffer only when someone asks for `data`. */
export class LocalObject implements StoredObject {
  readonly bucket: string;
  readonly name: string;
  readonly resource: ObjectResource;
  readonly #content: ObjectContent;
  #joined: Buffer | undefined;

  /** Wraps finished content and its resource. */
  constructor(resource: ObjectResource, content: ObjectContent) {
    this.bucket = resource.bucket;
    this.name = resource.name;
    this.resource = resource;
    this.#content = content;
  }

  /** The object's bytes (empty when discarded). */
  get data(): Buffer {
    if (this.#joined === undefined) {
      const { parts } = this.#content;
      this.#joined = parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
    }
    return this.#joined;
  }

  /** The object's size in bytes (also when its bytes were discarded). */
  get size(): number {
    return this.#content.size;
  }

  /** True when only size and checksums were kept. */
  get discarded(): boolean {
    return this.#content.discarded;
  }

  /** The bytes `[start, end)`, as a list of views, without joining them. */
  slice(start: number, end: number): Buffer[] {
    const out: Buffer[] = [];
    let position = 0;
    for (const part of this.#content.parts) {
      const partEnd = position + part.length;
      if (partEnd > start && position < end) {
        out.push(part.subarray(Math.max(0, start - position), Math.min(part.length, end - position)));
      }
      position = partEnd;
      if (position >= end) break;
    }
    return out;
  }
}

/**
 * Whether `name` is acceptable as a bucket name. Loose on purpose, as emulators are (a test may well use `b`): one
 * path segment of at most 222 characters without control characters. GCS's own naming rules are the client's to
 * enforce against Google's endpoint.
 */
export function isValidBucketName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= 222 && !/[/\u0000-\u001f\u007f]/.test(name);
}

/** Why `name` is not acceptable as an object name, or `undefined` if it is. */
export function objectNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Object name must not be empty.';
  if (Buffer.byteLength(name, 'utf8') > 1024) return 'Object name must be at most 1024 bytes of UTF-8.';
  if (name === '.' || name === '..') return `Object name must not be "${name}".`;
  if (/[\r\n]/.test(name)) return 'Object name must not contain carriage returns or line feeds.';
  return undefined;
}

/** The in-memory store: bucket name -> object name -> live object. Buckets exist as soon as they are named. */
export class ObjectStore {
  readonly #buckets = new Map<string, Map<string, LocalObject>>();
  readonly #baseUrl: () => string;
  #lastGeneration = 0;

  /** `baseUrl` gives the server's URL, used in `selfLink` and `mediaLink`. */
  constructor(baseUrl: () => string) {
    this.#baseUrl = baseUrl;
  }

  /** The live object, if any. */
  get(bucket: string, name: string): LocalObject | undefined {
    return this.#buckets.get(bucket)?.get(name);
  }

  /** Live objects, sorted by bucket then name; of one bucket, and/or with a name prefix, if given. */
  list(bucket?: string, prefix = ''): LocalObject[] {
    const buckets = bucket === undefined ? [...this.#buckets.keys()].sort() : [bucket];
    const out: LocalObject[] = [];
    for (const bucketName of buckets) {
      const objects = this.#buckets.get(bucketName);
      if (objects === undefined) continue;
      for (const name of [...objects.keys()].sort()) {
        const object = objects.get(name);
        if (object !== undefined && name.startsWith(prefix)) out.push(object);
      }
    }
    return out;
  }

  /** Deletes the live object; returns whether there was one. */
  delete(bucket: string, name: string): boolean {
    return this.#buckets.get(bucket)?.delete(name) ?? false;
  }

  /** Why `preconditions` fail against the live object, or `undefined` if they hold. */
  preconditionProblem(bucket: string, name: string, preconditions: Preconditions): string | undefined {
    const live = this.get(bucket, name);
    const generation = live?.resource.generation;
    const metageneration = live?.resource.metageneration;
    const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } = preconditions;
    if (ifGenerationMatch !== undefined) {
      if (ifGenerationMatch === '0' ? live !== undefined : generation !== ifGenerationMatch) {
        return `ifGenerationMatch=${ifGenerationMatch} failed: the live generation is ${generation ?? 'none'}.`;
      }
    }
    if (ifGenerationNotMatch !== undefined) {
      if (ifGenerationNotMatch === '0' ? live === undefined : generation === ifGenerationNotMatch) {
        return `ifGenerationNotMatch=${ifGenerationNotMatch} failed: the live generation is ${generation ?? 'none'}.`;
      }
    }
    if (ifMetagenerationMatch !== undefined && metageneration !== ifMetagenerationMatch) {
      return `ifMetagenerationMatch=${ifMetagenerationMatch} failed: the live metageneration is ${metageneration ?? 'none'}.`;
    }
    if (ifMetagenerationNotMatch !== undefined && live !== undefined && metageneration === ifMetagenerationNotMatch) {
      return `ifMetagenerationNotMatch=${ifMetagenerationNotMatch} failed: the live metageneration is ${metageneration}.`;
    }
    return undefined;
  }

  /** A new generation number: microseconds since the epoch, strictly increasing, like real ones. */
  nextGeneration(): string {
    return String((this.#lastGeneration = Math.max(this.#lastGeneration + 1, Date.now() * 1000)));
  }

  /**
   * Publishes `content` as a new live generation of `bucket/name`, replacing any previous one. `generation` republishes
   * an existing generation with new content: an appendable object grows in place, and is `finalized` only at its end.
   */
  create(
    bucket: string,
    name: string,
    content: ObjectContent,
    meta: ObjectMetadata = {},
    generation = this.nextGeneration(),
    finalized = true,
  ): LocalObject {
    const now = new Date().toISOString();
    const encoded = encodeURIComponent(name);
    const base = this.#baseUrl();
    const resource: ObjectResource = {
      kind: 'storage#object',
      id: `${bucket}/${name}/${generation}`,
      selfLink: `${base}/storage/v1/b/${bucket}/o/${encoded}`,
      mediaLink: `${base}/download/storage/v1/b/${bucket}/o/${encoded}?generation=${generation}&alt=media`,
      name,
      bucket,
      generation,
      metageneration: '1',
      contentType: meta.contentType ?? 'application/octet-stream',
      size: String(content.size),
      crc32c: crc32cToBase64(content.crc32c),
      etag: randomBytes(8).toString('base64').replace(/=+$/, ''),
      timeCreated: now,
      updated: now,
      timeStorageClassUpdated: now,
      storageClass: meta.storageClass ?? 'STANDARD',
    };
    if (finalized) resource.timeFinalized = now;
    if (content.md5 !== undefined) resource.md5Hash = content.md5.toString('base64');
    if (meta.metadata !== undefined) resource.metadata = { ...meta.metadata };
    for (const field of ['cacheControl', 'contentEncoding', 'contentDisposition', 'contentLanguage', 'customTime', 'kmsKeyName'] as const) {
      const value = meta[field];
      if (value !== undefined) resource[field] = value;
    }
    const object = new LocalObject(resource, content);
    let objects = this.#buckets.get(bucket);
    if (objects === undefined) {
      objects = new Map();
      this.#buckets.set(bucket, objects);
    }
    objects.set(name, object);
    return object;
  }
}
