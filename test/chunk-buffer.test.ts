import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkBuffer } from '../src/chunk-buffer.js';
import { continueCrc32c, ObjectHasher } from '../src/checksum.js';

const K256 = 256 * 1024;

function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('ChunkBuffer (the replay window)', () => {
  it('hands out full aligned chunks as views and the rest as the final span', () => {
    const buf = new ChunkBuffer(K256, 2);
    const data = bytes(K256 + 10);
    expect(buf.write(data)).toBe(K256 + 10);
    const first = buf.nextSpan()!;
    expect(first).toMatchObject({ offset: 0, final: false });
    expect(first.body.equals(data.subarray(0, K256))).toBe(true);
    buf.release(K256);
    expect(buf.nextSpan()).toBeUndefined();
    buf.end();
    const last = buf.nextSpan()!;
    expect(last).toMatchObject({ offset: K256, final: true });
    expect(last.body.equals(data.subarray(K256))).toBe(true);
  });

  it('stops accepting at the memory bound and resumes once bytes are committed', () => {
    const buf = new ChunkBuffer(K256, 2);
    expect(buf.write(bytes(3 * K256))).toBe(2 * K256);
    expect(buf.spaceAvailable).toBe(0);
    buf.release(K256);
    expect(buf.spaceAvailable).toBe(K256);
    expect(buf.bytesAllocated).toBe(2 * K256);
  });

  it('resends only the uncommitted tail after an aligned partial commit', () => {
    const buf = new ChunkBuffer(4 * K256, 2);
    const data = bytes(5 * K256);
    buf.write(data);
    buf.release(K256);
    const span = buf.nextSpan()!;
    expect(span.offset).toBe(K256);
    expect(span.body.length).toBe(3 * K256);
    expect(span.body.equals(data.subarray(K256, 4 * K256))).toBe(true);
  });

  it('realigns the window after an unaligned commit so every non-final request stays a multiple of 256 KiB', () => {
    const buf = new ChunkBuffer(2 * K256, 3);
    const data = bytes(5 * K256 + 7);
    buf.write(data);
    buf.release(1000);
    const span = buf.nextSpan()!;
    expect(span.offset).toBe(1000);
    expect(span.final).toBe(false);
    expect(span.body.length).toBe(2 * K256);
    expect(span.body.equals(data.subarray(1000, 1000 + 2 * K256))).toBe(true);
    buf.release(1000 + 2 * K256);
    buf.end();
    const spans = [];
    for (;;) {
      const next = buf.nextSpan()!;
      spans.push(next);
      buf.release(next.offset + next.body.length);
      if (next.final) break;
    }
    const rest = Buffer.concat(spans.map((s) => s.body));
    expect(rest.equals(data.subarray(1000 + 2 * K256))).toBe(true);
  });

  it('feeds its hasher every byte exactly once, whatever the write sizes and commits', () => {
    const hasher = new ObjectHasher('both');
    const buf = new ChunkBuffer(K256, 2, 0, hasher);
    const data = bytes(3 * K256 + 123);
    let pos = 0;
    const commit = (to: number): void => {
      buf.hashSome(1000);
      buf.release(to);
    };
    for (const size of [1, 7, 100_000, K256, 3, K256 + 5]) {
      pos += buf.write(data.subarray(pos, pos + size));
      const span = buf.nextSpan();
      if (span && !span.final) commit(span.offset + span.body.length);
    }
    while (pos < data.length) {
      pos += buf.write(data.subarray(pos));
      const span = buf.nextSpan();
      if (span) commit(span.offset + span.body.length);
    }
    buf.end();
    const last = buf.nextSpan()!;
    commit(last.offset + last.body.length);
    expect(hasher.md5).toBe(createHash('md5').update(data).digest('base64'));
  });

  it('skips (and hands over) bytes the resumed session already holds', () => {
    const buf = new ChunkBuffer(K256, 2, 1000);
    const skipped: Buffer[] = [];
    buf.skipTo(1000 + K256 + 10, (b) => skipped.push(Buffer.from(b)));
    const data = bytes(2 * K256);
    expect(buf.write(data)).toBe(2 * K256);
    expect(Buffer.concat(skipped).equals(data.subarray(0, K256 + 10))).toBe(true);
    expect(buf.windowStart).toBe(1000 + K256 + 10);
    buf.end();
    const span = buf.nextSpan()!;
    expect(span).toMatchObject({ offset: 1000 + K256 + 10, final: true });
    expect(span.body.equals(data.subarray(K256 + 10))).toBe(true);
  });

  it('knows the CRC32C state at every committed offset, whenever hashing happened (deferred, partial, realigned)', () => {
    const data = bytes(7 * K256 + 999, 7);
    const crcOf = (n: number): number => continueCrc32c(0, data.subarray(0, n));
    for (const hashStep of [0, 1000, K256, 10 * K256]) {
      const hasher = new ObjectHasher('crc32c');
      const buf = new ChunkBuffer(2 * K256, 3, 0, hasher);
      let pos = 0;
      const commits = [1000, 1000 + 2 * K256, 3 * K256, 3 * K256 + 5, 5 * K256, 7 * K256 + 999];
      for (const commit of commits) {
        while (buf.bytesAccepted < commit) pos += buf.write(data.subarray(pos, Math.min(data.length, pos + 100_000)));
        if (pos === data.length) buf.end();
        if (hashStep > 0) buf.hashSome(hashStep);
        // Let the window hand out (and realign for) its next span, as the uploader would.
        buf.nextSpan();
        expect(buf.crcAt(commit)).toBe(crcOf(commit));
        buf.release(commit);
      }
      expect(hasher.crcState).toBe(crcOf(data.length));
    }
  });

  it('holds a full window for a whole-window request until the writer shows more or ends (or it is forced)', () => {
    const data = bytes(4 * K256 + 1);
    const ended = new ChunkBuffer(K256, 2);
    expect(ended.write(data.subarray(0, 2 * K256))).toBe(2 * K256);
    expect(ended.nextSpan(true)).toBeUndefined();
    ended.end();
    expect(ended.nextSpan(true)).toMatchObject({ offset: 0, final: true });
    expect(ended.nextSpan(true)!.body.equals(data.subarray(0, 2 * K256))).toBe(true);

    const more = new ChunkBuffer(K256, 2);
    expect(more.write(data)).toBe(2 * K256); // the rest did not fit: not the end
    expect(more.nextSpan(true)).toMatchObject({ offset: 0, final: false });
    expect(more.nextSpan(true)!.body.length).toBe(2 * K256);

    const paused = new ChunkBuffer(K256, 2);
    paused.write(data.subarray(0, 2 * K256));
    expect(paused.nextSpan(true, true)).toMatchObject({ offset: 0, final: false });
  });

  it('gives an empty final span for an empty object', () => {
    const buf = new ChunkBuffer(K256, 2);
    buf.end();
    expect(buf.nextSpan()).toMatchObject({ offset: 0, final: true });
    expect(buf.nextSpan()!.body.length).toBe(0);
  });
});
