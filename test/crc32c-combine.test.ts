import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { combineCrc32c, combineCrc32cs } from '../src/core/crc32c-combine.js';
import { createRng } from '../src/testing/index.js';

const LENGTHS = [0, 1, 255, 256 * 1024, 32 * 1024 * 1024 + 1];

/** Deterministic bytes (a 32 MiB randomBytes call is slow on a shared machine; the content only has to vary). */
function bytes(length: number, seed: number): Buffer {
  const rng = createRng(seed);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i + 4 <= length; i += 4) out.writeUInt32LE(Math.floor(rng() * 0x1_0000_0000), i);
  for (let i = length - (length % 4); i < length; i += 1) out[i] = Math.floor(rng() * 256);
  return out;
}

describe('combineCrc32c', () => {
  for (const lengthA of LENGTHS) {
    for (const lengthB of LENGTHS) {
      if (lengthA + lengthB > 40 * 1024 * 1024) continue;
      it(`equals crc32c(A || B) for |A| = ${lengthA}, |B| = ${lengthB}`, () => {
        const a = bytes(lengthA, lengthA + 1);
        const b = bytes(lengthB, lengthB + 7);
        expect(combineCrc32c(crc32c(a), crc32c(b), b.length)).toBe(crc32c(Buffer.concat([a, b])));
      });
    }
  }

  it('combines 33 random pieces in order, as a composite of composites', () => {
    const pieces = Array.from({ length: 33 }, (_, i) => randomBytes(1 + ((i * 7919) % 5000)));
    const whole = crc32c(Buffer.concat(pieces));
    expect(combineCrc32cs(pieces.map((piece) => ({ crc32c: crc32c(piece), size: piece.length })))).toBe(whole);
    // Tiers: combine the first 32, then the result with the 33rd.
    const first = Buffer.concat(pieces.slice(0, 32));
    const last = pieces[32]!;
    expect(combineCrc32c(crc32c(first), crc32c(last), last.length)).toBe(whole);
  });

  it('is associative for lengths beyond 2^32 bytes (CRCs of zeros built by doubling from a real 1 MiB one)', () => {
    let zeros = crc32c(Buffer.alloc(1024 * 1024));
    let length = 1024 * 1024;
    while (length < 2 ** 32) {
      zeros = combineCrc32c(zeros, zeros, length);
      length *= 2;
    }
    const crcA = crc32c(Buffer.from('hello'));
    const zeros2 = combineCrc32c(zeros, zeros, length);
    expect(combineCrc32c(crcA, zeros2, 2 * length)).toBe(combineCrc32c(combineCrc32c(crcA, zeros, length), zeros, length));
    expect(() => combineCrc32c(crcA, 0, -1)).toThrow(RangeError);
  });
});
