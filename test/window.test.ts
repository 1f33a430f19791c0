/**
 * The replay window as blocks (src/resumable/block-window.ts), directly: requests are views of the blocks (no copy), every
 * request but the last is a multiple of 256 KiB also after an unaligned commit, and the CRC32C state at any
 * committed offset is that of the bytes below it.
 */
import { describe, expect, it } from 'vitest';
import { BlockWindow } from '../src/resumable/block-window.js';
import { continueCrc32c, ObjectHasher } from '../src/core/checksum.js';
import { MemoryPool } from '../src/core/memory-pool.js';
import { contentAt, K256 } from './helpers.js';

function windowOf(requestBytes: number, capBytes: number, exact = true, hasher?: ObjectHasher): BlockWindow {
  return new BlockWindow({ requestBytes, capBytes, exact }, new MemoryPool().open(), 0, hasher);
}

function joined(pieces: readonly Uint8Array[]): Buffer {
  return Buffer.concat(pieces);
}

describe('BlockWindow', () => {
  it('hands out full blocks as views of the blocks, and the rest as the final span', () => {
    const window = windowOf(2 * K256, 4 * K256);
    const data = contentAt(0, 2 * K256 + 10);
    expect(window.write(data)).toBe(data.length);
    expect(window.bytesHeld).toBe(3 * K256);
    const first = window.nextSpan()!;
    expect(first).toMatchObject({ offset: 0, length: 2 * K256, final: false });
    expect(first.pieces).toHaveLength(2);
    expect(joined(first.pieces).equals(data.subarray(0, 2 * K256))).toBe(true);
    // A view: the bytes are the block's own memory.
    expect(first.pieces[0]!.buffer).not.toBe(data.buffer);
    window.release(2 * K256);
    expect(window.bytesHeld).toBe(K256);
    expect(window.nextSpan()).toBeUndefined();
    window.end();
    const last = window.nextSpan()!;
    expect(last).toMatchObject({ offset: 2 * K256, length: 10, final: true });
    expect(joined(last.pieces).equals(data.subarray(2 * K256))).toBe(true);
  });

  it('pipelined: sends half the target once that much is full, so the writer can refill the other half meanwhile', () => {
    const window = windowOf(K256, 8 * K256); // exact: the target is the cap, 8 blocks
    window.write(contentAt(0, 3 * K256 + 1));
    expect(window.nextSpan('pipelined')).toBeUndefined(); // 3 full blocks: less than half
    expect(window.nextSpan('pipelined', true)).toMatchObject({ offset: 0, length: 3 * K256 }); // forced: what is full
    window.write(contentAt(3 * K256 + 1, 3 * K256));
    // Six full blocks: half of the target goes, not all of them.
    expect(window.nextSpan('pipelined')).toMatchObject({ offset: 0, length: 4 * K256, final: false });
    expect(window.nextSpan('chunks')).toMatchObject({ offset: 0, length: K256 });
  });

  it('a commit that makes room clears "the writer waits": the block left over waits for the refill, not alone', () => {
    const window = windowOf(7 * K256, 8 * K256); // exact: the target is the cap, 8 blocks
    window.write(contentAt(0, 7 * K256 + 1000));
    expect(window.nextSpan('chunks')).toMatchObject({ offset: 0, length: 7 * K256 });
    // The writer fills the eighth block, and has one byte more than fits: it waits.
    expect(window.write(contentAt(7 * K256 + 1000, K256 - 1000 + 1))).toBe(K256 - 1000);
    expect(window.full).toBe(true);
    window.release(7 * K256);
    // The writer was woken and has not written yet: one block on its own would cost a whole answer wait.
    expect(window.full).toBe(false);
    expect(window.nextSpan('whole')).toBeUndefined();
    window.write(contentAt(8 * K256, 7 * K256 + 1));
    expect(window.nextSpan('whole')).toMatchObject({ offset: 7 * K256, length: 8 * K256 });
  });

  it('at its target with nothing more from the writer: a chunk request takes the last block, a whole one leaves it for end()', () => {
    // Chunks (a slow writer): its full window goes at once; holding the last block until the next write would make
    // the writer wait on a full window through every request, and the window grow for it (S7 grew to 1.4 blocks per
    // stream so).
    const slow = windowOf(2 * K256, 2 * K256); // exact: the target is the cap, 2 blocks
    expect(slow.write(contentAt(0, 2 * K256))).toBe(2 * K256);
    expect(slow.nextSpan('chunks')).toMatchObject({ offset: 0, length: 2 * K256, final: false });
    // Whole (a fast writer, slow answers): its last write may have been its last; sending every block would leave
    // an empty request to finalize. The block before the last goes; the last goes with end().
    const fast = windowOf(2 * K256, 2 * K256);
    expect(fast.write(contentAt(0, 2 * K256))).toBe(2 * K256);
    expect(fast.nextSpan('whole')).toMatchObject({ offset: 0, length: K256, final: false });
    fast.release(K256);
    fast.end();
    expect(fast.nextSpan('whole')).toMatchObject({ offset: K256, length: K256, final: true });
  });

  it('stops accepting at its cap and goes on once bytes are committed', () => {
    const window = windowOf(K256, 2 * K256);
    expect(window.write(contentAt(0, 3 * K256))).toBe(2 * K256);
    expect(window.full).toBe(true);
    window.release(K256);
    expect(window.write(contentAt(2 * K256, K256))).toBe(K256);
  });

  it('realigns after an unaligned commit: the next request starts there and is a multiple of 256 KiB', () => {
    const window = windowOf(2 * K256, 3 * K256);
    const data = contentAt(0, 3 * K256);
    window.write(data);
    window.release(1000);
    const span = window.nextSpan()!;
    expect(span.offset).toBe(1000);
    expect(span.length % K256).toBe(0);
    expect(joined(span.pieces).equals(data.subarray(1000, 1000 + span.length))).toBe(true);
    window.release(1000 + span.length);
    window.end();
    const rest = window.nextSpan()!;
    expect(rest.final).toBe(true);
    expect(joined(rest.pieces).equals(data.subarray(1000 + span.length))).toBe(true);
  });

  it('knows the CRC32C state at any committed offset, before and after a realign', () => {
    const hasher = new ObjectHasher('crc32c');
    const window = windowOf(2 * K256, 4 * K256, true, hasher);
    const data = contentAt(0, 3 * K256 + 500);
    window.write(data);
    for (const offset of [0, 777, K256, K256 + 1]) expect(window.crcAt(offset)).toBe(continueCrc32c(0, data.subarray(0, offset)));
    window.release(K256 + 1);
    window.nextSpan(); // realigns
    for (const offset of [K256 + 1, 2 * K256, 3 * K256 + 500])
      expect(window.crcAt(offset)).toBe(continueCrc32c(0, data.subarray(0, offset)));
  });

  it('at a declared size, holds the bytes that reach it until end()', () => {
    const window = new BlockWindow(
      { requestBytes: K256, capBytes: 2 * K256, exact: true },
      new MemoryPool().open(),
      0,
      undefined,
      2 * K256,
    );
    window.write(contentAt(0, 2 * K256));
    const first = window.nextSpan()!;
    expect(first).toMatchObject({ offset: 0, length: K256, final: false });
    window.release(K256);
    expect(window.nextSpan()).toBeUndefined();
    window.end();
    expect(window.nextSpan()).toMatchObject({ offset: K256, length: K256, final: true });
  });

  it('gives every block back to its pool when disposed', () => {
    const pool = new MemoryPool();
    const window = new BlockWindow({ requestBytes: K256, capBytes: 4 * K256, exact: true }, pool.open(), 0);
    window.write(contentAt(0, 3 * K256));
    expect(pool.stats().bytesLent).toBe(3 * K256);
    window.dispose();
    expect(pool.stats()).toMatchObject({ bytesLent: 0, bytesFree: 3 * K256, streams: 0 });
  });
});

describe('MemoryPool accounts', () => {
  it('a borrower that gives every block back while queued is owed one, and is granted exactly once', () => {
    const pool = new MemoryPool({ maxBytes: 2 * K256 });
    const a = pool.open();
    const b = pool.open();
    const wakes: string[] = [];
    const a1 = a.take(() => wakes.push('a'))!;
    const b1 = b.take(() => wakes.push('b'))!;
    // Both blocks lent: a's second request queues as a borrower.
    expect(a.take(() => wakes.push('a'))).toBeUndefined();
    a.give(a1); // a holds none now; the pool lends the block to no one (a's request is a borrower's)...
    const a2 = a.take(() => wakes.push('a'));
    expect(a2).toBeDefined(); // ...and a, asking again as an owed stream, gets it.
    expect(pool.stats().waitingStreams).toBe(0);
    b.give(b1);
    expect(wakes).toEqual([]); // nobody waits any more: no grant
    a.close([a2!]);
    b.close([]);
    expect(pool.stats()).toMatchObject({ bytesLent: 0, streams: 0, waitingStreams: 0 });
  });
});
