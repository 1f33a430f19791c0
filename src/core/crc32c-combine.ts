/**
 * CRC32C of a concatenation from the CRCs of its pieces: crc(A || B) from crc(A), crc(B) and the length of B,
 * without the bytes. A composed object's CRC32C is checked this way against the parts' (GCS computes the
 * composite's CRC32C the same way), so that verifying a compose needs no second pass over the data.
 *
 * How: appending `n` bytes to A multiplies A's CRC by x^(8n) modulo the CRC polynomial (the pre- and
 * post-conditioning of the two CRCs cancel out), so crc(A || B) = crc(A) · x^(8n) mod P  xor  crc(B). Products
 * are carry-less, in the bit-reflected representation CRC32C uses (bit 31 is the coefficient of x^0); x^(8n) is
 * built by square-and-multiply from a table of x^(2^k), so the cost is logarithmic in `n`.
 */

/** The CRC32C (Castagnoli) polynomial, bit-reflected. */
const POLYNOMIAL = 0x82f63b78;
/** x^0 in the reflected representation. */
const ONE = 0x80000000;

/** a · b modulo the polynomial (both reflected). */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  let multiplier = b >>> 0;
  for (let bit = ONE; bit !== 0; bit >>>= 1) {
    if ((a & bit) !== 0) product ^= multiplier;
    multiplier = (multiplier & 1) !== 0 ? (multiplier >>> 1) ^ POLYNOMIAL : multiplier >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) mod P for k = 0..63: enough for any safe-integer length (8n < 2^56). */
const POWERS_OF_X: readonly number[] = (() => {
  const table = [ONE >>> 1]; // x^1
  for (let k = 1; k < 64; k += 1) {
    const previous = table[k - 1] ?? 0;
    table.push(multiplyModP(previous, previous));
  }
  return table;
})();

/** The last length asked for and its operator: a stream combines block after block of one length (256 KiB). */
let lastShift = { bytes: 0, operator: ONE };

/** x^(8 · bytes) mod P. */
function shiftOperator(bytes: number): number {
  if (lastShift.bytes === bytes) return lastShift.operator;
  let result = ONE;
  let k = 3; // 8 = 2^3: each byte is eight zero bits
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k += 1) {
    if (n % 2 === 1) result = multiplyModP(POWERS_OF_X[k] ?? 0, result);
  }
  lastShift = { bytes, operator: result };
  return result;
}

/**
 * The CRC32C of A followed by B, from `crcA` (CRC32C of A), `crcB` (CRC32C of B) and `lengthB` (bytes of B): the
 * same value as computing the CRC32C over the concatenation. CRCs are the ordinary unsigned 32-bit values (what
 * `@node-rs/crc32`'s `crc32c` returns and GCS's `crc32c` field encodes).
 */
export function combineCrc32c(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) throw new RangeError(`lengthB must be a non-negative safe integer, got ${lengthB}`);
  if (lengthB === 0) return crcA >>> 0;
  return (multiplyModP(shiftOperator(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}

/** The CRC32C of the concatenation of `pieces` (each with its CRC32C and length), in order; 0 for none. */
export function combineCrc32cs(pieces: Iterable<{ readonly crc32c: number; readonly size: number }>): number {
  let crc = 0;
  for (const piece of pieces) crc = combineCrc32c(crc, piece.crc32c, piece.size);
  return crc;
}
