/**
 * How a stored object compares with what this upload wrote: its size and every checksum both sides have. Used to
 * verify a finished upload, and, after a failure, to tell this upload's object from another one of that name.
 */
import type { ObjectHasher } from '../core/checksum.js';
import type { Mismatch } from '../core/outcome.js';
import type { ObjectResource } from '../core/responses.js';

/** Which of the computed checksums a comparison uses. */
export type Checksums =
  /** Those the validation mode asks for: verifying a finished upload. */
  | 'validated'
  /** Every checksum computed (the CRC32C always is): telling this upload's bytes from another object's. */
  | 'all';

/** Compares objects with the bytes written (all of them must have been fed to the hasher). */
export class ObjectCheck {
  readonly #hasher: ObjectHasher;
  /** The generation `ifGenerationMatch` named: an object of that generation is the one being replaced. */
  readonly #replacedGeneration: string | undefined;

  constructor(hasher: ObjectHasher, replacedGeneration: string | undefined) {
    this.#hasher = hasher;
    this.#replacedGeneration = replacedGeneration;
  }

  /** How `object` differs from the `total` bytes written. */
  mismatches(object: ObjectResource, total: number, checksums: Checksums): Mismatch[] {
    const found: Mismatch[] = [];
    if (object.size !== String(total)) found.push({ field: 'size', stored: object.size, expected: String(total) });
    const crc = checksums === 'all' ? this.#hasher.crc32c : this.#hasher.validatedCrc32c;
    if (crc !== undefined && object.crc32c !== undefined && object.crc32c !== crc) {
      found.push({ field: 'crc32c', stored: object.crc32c, expected: crc });
    }
    const md5 = this.#hasher.md5;
    if (md5 !== undefined && object.md5Hash !== undefined && object.md5Hash !== md5) {
      found.push({ field: 'md5', stored: object.md5Hash, expected: md5 });
    }
    return found;
  }

  /**
   * Whether `object` is this upload's: nothing differs from the `total` bytes written, a checksum proves it rather
   * than being absent, and it is not the generation a precondition named.
   */
  isOurs(object: ObjectResource, total: number): boolean {
    if (this.mismatches(object, total, 'all').length > 0) return false;
    const crc = this.#hasher.crc32c;
    if (crc === undefined && this.#hasher.md5 === undefined) return false; // nothing to tell our bytes from another's
    if (crc !== undefined && object.crc32c === undefined) return false;
    return this.#replacedGeneration === undefined || object.generation !== this.#replacedGeneration;
  }
}
