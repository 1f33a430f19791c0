/**
 * Whole-object checksums: a running CRC32C (native, via @node-rs/crc32) and, when asked for, MD5. Both are fed in
 * large contiguous pieces by the chunk buffer, so the native call overhead does not depend on write sizes.
 */
import type { Hash } from 'node:crypto';
import { combineCrc32c } from './crc32c-combine.js';
import { nodeRequire } from './node-require.js';
import type { Validation } from './options.js';

const { crc32c } = nodeRequire('@node-rs/crc32') as typeof import('@node-rs/crc32');

/** A new MD5 hash; `node:crypto` is loaded only by uploads that validate with MD5. */
function md5Hash(): Hash {
  return (nodeRequire('node:crypto') as typeof import('node:crypto')).createHash('md5');
}

/** Base64 of a CRC32C value in big-endian byte order, as GCS's `crc32c` field and `X-Goog-Hash` carry it. */
export function crc32cToBase64(value: number): string {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0, 0);
  return bytes.toString('base64');
}

/** The CRC32C value a base64 `crc32c` field (4 bytes, big-endian) encodes, or undefined if it is not one. */
export function crc32cFromBase64(text: string): number | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === 4 && bytes.toString('base64') === text ? bytes.readUInt32BE(0) : undefined;
}

/** Continues the raw CRC32C `state` of the bytes before `bytes` over them. */
export function continueCrc32c(state: number, bytes: Uint8Array): number {
  return bytes.length === 0 ? state : crc32c(bytes, state) >>> 0;
}

/**
 * The checksums of everything written so far. The CRC32C is computed whatever the validation mode (it costs about
 * 0.2 s per GiB): checkpoints carry it, so that a resumed source can be checked against the bytes already uploaded,
 * and after a lost final answer it tells this upload's object from another. `validation` decides only what is sent
 * to GCS and compared with the stored object.
 */
export class ObjectHasher {
  readonly #md5: Hash | undefined;
  readonly #validateCrc: boolean;
  /** Raw CRC32C so far; undefined when the bytes before a resumed offset are not known (see constructor). */
  #crc32c: number | undefined;

  /**
   * `crcState` continues a CRC32C from a checkpoint (the raw CRC of the object's first bytes); pass undefined when
   * the hasher starts after bytes whose CRC32C is unknown: it then computes none.
   */
  constructor(validation: Validation, crcState: number | undefined = 0) {
    this.#validateCrc = validation === 'crc32c' || validation === 'both';
    this.#crc32c = crcState;
    this.#md5 = validation === 'md5' || validation === 'both' ? md5Hash() : undefined;
  }

  /** The raw CRC32C so far (what a checkpoint stores), or undefined when it cannot be known. */
  get crcState(): number | undefined {
    return this.#crc32c === undefined ? undefined : this.#crc32c >>> 0;
  }

  /** Adds the next bytes of the object, in order. */
  update(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#crc32c !== undefined) this.#crc32c = continueCrc32c(this.#crc32c, bytes);
    this.#md5?.update(bytes);
  }

  /**
   * Adds the next bytes of the object whose CRC32C (`crc`, of these bytes alone) is already known (the worker
   * computed it): the running CRC32C is combined with it, only MD5, when on, reads the bytes.
   */
  updateWithCrc(bytes: Uint8Array, crc: number): void {
    if (bytes.length === 0) return;
    if (this.#crc32c !== undefined) this.#crc32c = combineCrc32c(this.#crc32c, crc, bytes.length);
    this.#md5?.update(bytes);
  }

  /** Base64 CRC32C of the bytes so far, whatever the validation mode, or undefined when it cannot be known. */
  get crc32c(): string | undefined {
    return this.#crc32c === undefined ? undefined : crc32cToBase64(this.#crc32c);
  }

  /** Base64 CRC32C of the bytes so far when CRC32C validation is on. */
  get validatedCrc32c(): string | undefined {
    return this.#validateCrc ? this.crc32c : undefined;
  }

  /** Base64 MD5 of the bytes so far (MD5 state is copied, so hashing can go on), or undefined when off. */
  get md5(): string | undefined {
    return this.#md5?.copy().digest('base64');
  }

  /** The `X-Goog-Hash` header value for the final request, or undefined when validation is off. */
  header(): string | undefined {
    const parts: string[] = [];
    const crc = this.validatedCrc32c;
    const md5 = this.md5;
    if (crc !== undefined) parts.push(`crc32c=${crc}`);
    if (md5 !== undefined) parts.push(`md5=${md5}`);
    return parts.length > 0 ? parts.join(',') : undefined;
  }
}
