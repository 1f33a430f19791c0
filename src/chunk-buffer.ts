/**
 * The replay window: every byte accepted from the writer and not yet committed by GCS, held in at most
 * `maxChunks` preallocated chunk-sized buffers ("slabs"). Writes are copied in (callers' buffers are never
 * retained); requests are views of a single slab, so nothing is copied on the way out; committed bytes are
 * released and their slab is reused.
 *
 * Invariant: slabs are in offset order and every slab but the last is full. The window is
 * [windowStart, bytesAccepted); windowStart is the committed offset.
 */
import { CHUNK_ALIGNMENT } from './options.js';

interface Slab {
  buf: Buffer;
  /** Absolute object offset of buf[0]. */
  start: number;
  /** Bytes of buf in use. */
  filled: number;
}

/** The next request to send: bytes from the committed offset, and whether they end the object. */
export interface Span {
  offset: number;
  body: Buffer;
  /** True when `body` reaches the end of the object (the request carries the total size). */
  final: boolean;
}

/** Bytes accepted but not committed, in bounded, reused chunk buffers. */
export class ChunkBuffer {
  readonly #chunkSize: number;
  readonly #maxChunks: number;
  readonly #slabs: Slab[] = [];
  readonly #spare: Buffer[] = [];
  #allocated = 0;
  #accepted: number;
  #windowStart: number;
  #ended = false;
  #disposed = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  /** Bytes below this offset are already committed (a resumed session): they are handed to #onSkip, not held. */
  #skipUntil = 0;
  #onSkip: ((bytes: Uint8Array) => void) | undefined;

  /** `startOffset` is the object offset of the first byte the writer will supply (non-zero when resuming). */
  constructor(chunkSize: number, maxChunks: number, startOffset = 0) {
    this.#chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
    this.#accepted = startOffset;
    this.#windowStart = startOffset;
  }

  /**
   * The session already holds everything below `offset`: the writer's bytes up to there are passed to `onSkip`
   * (to be hashed) instead of being held and sent. Only valid before anything was written.
   */
  skipTo(offset: number, onSkip: (bytes: Uint8Array) => void): void {
    if (offset < this.#accepted || this.#slabs.length > 0) throw new RangeError('skipTo must precede writes');
    this.#skipUntil = offset;
    this.#windowStart = offset;
    this.#onSkip = onSkip;
  }

  /** Bytes taken from the writer (including any resumed offset). */
  get bytesAccepted(): number {
    return this.#accepted;
  }

  /** The committed offset: first byte still held. */
  get windowStart(): number {
    return this.#windowStart;
  }

  /** End of the range being skipped (see `skipTo`); 0 when not resuming. */
  get skipUntil(): number {
    return this.#skipUntil;
  }

  /** Whether `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes currently allocated for slabs (the memory bound in use). */
  get bytesAllocated(): number {
    return this.#allocated * this.#chunkSize;
  }

  /** Bytes that can be copied in right now without waiting for a commit. */
  get spaceAvailable(): number {
    const last = this.#slabs.at(-1);
    const freeInLast = last ? this.#chunkSize - last.filled : 0;
    return freeInLast + (this.#maxChunks - this.#slabs.length) * this.#chunkSize;
  }

  /** Copies as much of `src[from..]` as fits; returns the number of bytes copied. */
  write(src: Uint8Array, from = 0): number {
    if (this.#ended) throw new Error('write after end');
    if (this.#disposed) return 0;
    let copied = 0;
    if (this.#accepted < this.#skipUntil) {
      const skip = Math.min(src.length - from, this.#skipUntil - this.#accepted);
      this.#onSkip?.(src.subarray(from, from + skip));
      this.#accepted += skip;
      copied += skip;
      if (this.#accepted === this.#skipUntil) this.#notifyReader();
    }
    let remaining = src.length - from - copied;
    while (remaining > 0) {
      let last = this.#slabs.at(-1);
      if (!last || last.filled === this.#chunkSize) {
        if (this.#slabs.length >= this.#maxChunks) break;
        const previousFull = last !== undefined;
        last = { buf: this.#takeBuffer(), start: this.#accepted, filled: 0 };
        this.#slabs.push(last);
        // A byte beyond a full chunk proves that chunk is not the last: it can go out now (see nextSpan).
        if (previousFull) this.#notifyReader();
      }
      const n = Math.min(remaining, this.#chunkSize - last.filled);
      last.buf.set(n === src.length && from === 0 ? src : src.subarray(from + copied, from + copied + n), last.filled);
      last.filled += n;
      this.#accepted += n;
      copied += n;
      remaining -= n;
      // With no room for another slab the full chunk must go now (see nextSpan).
      if (last.filled === this.#chunkSize && this.#slabs.length >= this.#maxChunks) this.#notifyReader();
    }
    return copied;
  }

  /** No more writes: the object ends at `bytesAccepted`. */
  end(): void {
    this.#ended = true;
    this.#notifyReader();
  }

  /** Calls `fn` with the held bytes of [from, to), in order, as views (no copy). */
  visit(from: number, to: number, fn: (bytes: Buffer) => void): void {
    if (from < this.#windowStart || to > this.#accepted) {
      throw new RangeError(`visit(${from}, ${to}) outside the window [${this.#windowStart}, ${this.#accepted}]`);
    }
    for (const slab of this.#slabs) {
      if (from >= to) return;
      const slabEnd = slab.start + slab.filled;
      if (slabEnd <= from) continue;
      const end = Math.min(slabEnd, to);
      fn(slab.buf.subarray(from - slab.start, end - slab.start));
      from = end;
    }
  }

  /**
   * The next request body, or undefined if there is not yet enough data: a full chunk starting at the committed
   * offset, or (after `end()`) the rest of the object when it fits in one slab. Never copies, except to realign
   * after the server committed an unaligned offset.
   */
  nextSpan(): Span | undefined {
    const first = this.#slabs[0];
    if (this.#accepted < this.#skipUntil) return undefined;
    if (!first) {
      return this.#ended ? { offset: this.#windowStart, body: Buffer.alloc(0), final: true } : undefined;
    }
    const skip = this.#windowStart - first.start;
    if (skip % CHUNK_ALIGNMENT !== 0) {
      this.#realign();
      return this.nextSpan();
    }
    const full = first.filled === this.#chunkSize;
    if (this.#ended && this.#slabs.length === 1) {
      return { offset: this.#windowStart, body: first.buf.subarray(skip, first.filled), final: true };
    }
    // A full chunk goes out as soon as it is known not to be the last (a byte follows it), or when the writer could
    // not go on otherwise. Holding it until then lets an object whose size is a multiple of the chunk end with the
    // data-carrying request instead of an extra empty `bytes */TOTAL` round trip.
    if (full && (this.#slabs.length > 1 || this.spaceAvailable === 0)) {
      // Every chunk but the last must be a multiple of 256 KiB; skip is aligned, so chunkSize - skip is too.
      return { offset: this.#windowStart, body: first.buf.subarray(skip, first.filled), final: false };
    }
    return undefined;
  }

  /** GCS committed everything below `offset`: drop it and recycle emptied slabs. */
  release(offset: number): void {
    if (offset < this.#windowStart || offset > this.#accepted) {
      throw new RangeError(`release(${offset}) outside the window [${this.#windowStart}, ${this.#accepted}]`);
    }
    this.#windowStart = offset;
    let freed = false;
    while (this.#slabs.length > 0) {
      const first = this.#slabs[0]!;
      const end = first.start + first.filled;
      // Keep the last slab while it still has room: the writer is filling it.
      if (end > offset || (this.#slabs.length === 1 && first.filled < this.#chunkSize)) break;
      this.#slabs.shift();
      this.#spare.push(first.buf);
      freed = true;
    }
    if (freed) this.#notifyWriter();
  }

  /** Resolves when a new span may be available (more data, a full chunk, or end). */
  dataChanged(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeReader = resolve;
    });
  }

  /** Resolves when space may be available for the writer. */
  spaceChanged(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeWriter = resolve;
    });
  }

  /** Drops every buffer (after the upload ended, either way). */
  dispose(): void {
    this.#disposed = true;
    this.#slabs.length = 0;
    this.#spare.length = 0;
    this.#notifyWriter();
    this.#notifyReader();
  }

  #takeBuffer(): Buffer {
    const reused = this.#spare.pop();
    if (reused) return reused;
    this.#allocated += 1;
    // allocUnsafeSlow: a dedicated allocation, not a slice of Node's shared pool that could pin other memory.
    return Buffer.allocUnsafeSlow(this.#chunkSize);
  }

  /**
   * The server committed an offset that is not 256 KiB aligned relative to its slab. Shift the whole window so
   * that the committed offset sits at the start of the first slab; the next full chunk is then aligned again.
   * Rare (GCS commits aligned amounts), so an in-place move of the window is fine.
   */
  #realign(): void {
    const shift = this.#windowStart - this.#slabs[0]!.start;
    for (let i = 0; i < this.#slabs.length; i++) {
      const slab = this.#slabs[i]!;
      slab.buf.copyWithin(0, Math.min(shift, slab.filled), slab.filled);
      slab.filled = Math.max(0, slab.filled - shift);
      slab.start += shift;
      const next = this.#slabs[i + 1];
      if (next) {
        const take = Math.min(shift, next.filled);
        slab.buf.set(next.buf.subarray(0, take), slab.filled);
        slab.filled += take;
      }
    }
    while (this.#slabs.length > 1 && this.#slabs.at(-1)!.filled === 0) {
      this.#spare.push(this.#slabs.pop()!.buf);
    }
    this.#notifyWriter();
  }

  #notifyReader(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  #notifyWriter(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }
}
