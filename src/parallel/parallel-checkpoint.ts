/**
 * The checkpoint of a parallel composite upload: which temporary parts are stored (name, generation, CRC32C, size),
 * enough for a new process to continue without uploading them again. JSON-serializable and versioned like the
 * single-session checkpoint (core/checkpoint.ts); `kind: 'parallel'` tells the two apart.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** One stored part of a parallel upload. */
export interface StoredPart {
  /** Part index: the part holds source bytes [index × partSize, index × partSize + size). */
  index: number;
  /** The temporary object's name (`${partPrefix}${uploadId}/${index}`). */
  name: string;
  /** The temporary object's generation. */
  generation: string;
  /** Raw CRC32C of the part's bytes (an unsigned 32-bit integer). */
  crc32c: number;
  /** Bytes of the part. */
  size: number;
}

/**
 * Where a parallel upload stood after a part was stored. It holds no secret beyond the temporary objects' names,
 * but those are unguessable on purpose: store it as you would the single-session checkpoint.
 */
export interface ParallelCheckpoint {
  version: 1;
  kind: 'parallel';
  /** The random id under which the parts are named. */
  uploadId: string;
  bucket: string;
  /** The destination object. */
  name: string;
  /** The `partPrefix` the parts are named under. */
  partPrefix: string;
  /** The `partSize` the source was cut with. */
  partSize: number;
  /** Bytes of the contiguous prefix of stored parts (where a resumed source may start, see `sourceStart`). */
  bytesCommitted: number;
  /** The parts stored so far, by index. */
  parts: StoredPart[];
}

/** Whether `value` claims to be a parallel checkpoint (it is then validated by {@link validateParallelCheckpoint}). */
export function isParallelCheckpoint(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'parallel';
}

const UPLOAD_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Checks that `value` is a parallel checkpoint this version understands; throws `InvalidArgumentError` otherwise. */
export function validateParallelCheckpoint(value: unknown): ParallelCheckpoint {
  const c = value as Partial<ParallelCheckpoint> | null;
  if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('resume must be a checkpoint object');
  if (c.version !== 1) throw new InvalidArgumentError(`resume: unsupported checkpoint version ${String(c.version)}`);
  if (typeof c.uploadId !== 'string' || !UPLOAD_ID.test(c.uploadId)) {
    throw new InvalidArgumentError('resume: the parallel checkpoint has no valid uploadId');
  }
  if (typeof c.bucket !== 'string' || typeof c.name !== 'string' || typeof c.partPrefix !== 'string') {
    throw new InvalidArgumentError('resume: the parallel checkpoint has no bucket, name or partPrefix');
  }
  if (typeof c.partSize !== 'number' || !Number.isSafeInteger(c.partSize) || c.partSize <= 0) {
    throw new InvalidArgumentError('resume: the parallel checkpoint has no valid partSize');
  }
  if (!Array.isArray(c.parts)) throw new InvalidArgumentError('resume: the parallel checkpoint has no parts list');
  const prefix = `${c.partPrefix}${c.uploadId}/`;
  const parts: StoredPart[] = [];
  const seen = new Set<number>();
  for (const raw of c.parts as unknown[]) {
    const p = raw as Partial<StoredPart> | null;
    const valid =
      typeof p === 'object' &&
      p !== null &&
      Number.isSafeInteger(p.index) &&
      p.index! >= 0 &&
      p.name === `${prefix}${String(p.index)}` &&
      typeof p.generation === 'string' &&
      /^\d+$/.test(p.generation) &&
      Number.isInteger(p.crc32c) &&
      p.crc32c! >= 0 &&
      p.crc32c! <= 0xffffffff &&
      Number.isSafeInteger(p.size) &&
      p.size! > 0 &&
      p.size! <= c.partSize;
    if (!valid || seen.has(p.index!)) throw new InvalidArgumentError('resume: the parallel checkpoint has an invalid part');
    seen.add(p.index!);
    parts.push(Object.freeze({ index: p.index!, name: p.name!, generation: p.generation!, crc32c: p.crc32c!, size: p.size! }));
  }
  parts.sort((a, b) => a.index - b.index);
  return Object.freeze({
    version: 1,
    kind: 'parallel',
    uploadId: c.uploadId,
    bucket: c.bucket,
    name: c.name,
    partPrefix: c.partPrefix,
    partSize: c.partSize,
    bytesCommitted: contiguousBytes(parts, c.partSize),
    parts: Object.freeze(parts) as StoredPart[],
  });
}

/** Bytes of the parts 0, 1, ... stored without a gap (a short part ends the prefix). */
export function contiguousBytes(parts: Iterable<StoredPart>, partSize: number): number {
  const byIndex = new Map<number, StoredPart>();
  for (const part of parts) byIndex.set(part.index, part);
  let bytes = 0;
  for (let index = 0; ; index += 1) {
    const part = byIndex.get(index);
    if (part === undefined) return bytes;
    bytes += part.size;
    if (part.size < partSize) return bytes;
  }
}
