/**
 * Reads of storage v2 message fields with proto3's semantics. proto3 puts no default value on the wire, and
 * `@grpc/proto-loader` (with `defaults: false`) leaves such a field out of the decoded object: an absent `size`,
 * offset, count, string or flag is the type's default (0, '', false), never "unknown". Only fields with presence
 * (proto3 `optional`, members of a `oneof`, message fields) can be absent as such; those are read directly, as
 * `undefined`. Every read of a field without presence goes through here, so that none of them mistakes a zero for a
 * missing value.
 */

/** An `int64`/`uint64` field without presence (a decimal string, `longs: String`), as a number. */
export function int64Of(value: string | undefined): number {
  return value === undefined ? 0 : Number(value);
}

/** An `int64`/`uint64` field without presence, as its decimal text (generations, which may pass 2^53). */
export function int64TextOf(value: string | undefined): string {
  return value ?? '0';
}

/** A `string` field without presence. */
export function stringOf(value: string | undefined): string {
  return value ?? '';
}

/** A `bool` field without presence. */
export function boolOf(value: boolean | undefined): boolean {
  return value === true;
}

/** A `bytes` field without presence. */
export function bytesOf(value: Buffer | undefined): Buffer {
  return value ?? EMPTY;
}

const EMPTY = Buffer.alloc(0);
