/**
 * The replay window: every byte accepted from the writer and not yet committed by GCS, held in one allocation of
 * `maxChunks` chunk-sized regions ("slabs"). Writes are copied in (callers' buffers are never retained); requests
 * are views of the allocation, so nothing is copied on the way out; committed bytes are released and their region
 * is reused. Because the regions are adjacent, slabs that sit in memory order can go out as one request (see
 * `nextSpan(whole)`).
 *
 * The allocation grows as data arrives, so that an object smaller than a chunk never costs the whole window: it
 * starts at the first write with 256 KiB × 2^k bytes (enough for what is held), doubles while the first chunk fills,
 * and becomes the whole window (`chunkSize × maxChunks`) when a second chunk is needed. Growing copies the held
 * bytes (less than two chunks in all, per upload) and re-points every slab's view. It never happens while a span is
 * out: a span viewing the old allocation would keep it alive beside the new one, above the bound. No span goes out
 * before a second slab exists, the window is full, or the writer ended (see `nextSpan`), and by then the allocation
 * has its final size.
 *
 * The window also feeds the object's checksums, in order, but not as it fills: `hashSome()` is called while a
 * request is in flight (the writer and the socket then have nothing for the CPU), and only a commit, a checkpoint
 * or the final request forces what is left. Hashing passes every slab's start and records the CRC32C state there,
 * so the state at any committed offset (what a checkpoint carries) costs at most part of one slab.
 *
 * Invariant: slabs are in offset order and every slab but the last is full. The window is
 * [windowStart, bytesAccepted); windowStart is the committed offset.
 */
import { continueCrc32c } from './checksum.js';
import { CHUNK_ALIGNMENT } from './validate.js';

interface Slab {
  /** Index of the slab's region in the allocation. */
  region: number;
  buf: Buffer;
  /** Absolute object offset of buf[0]. */
  start: number;
  /** Bytes of buf in use. */
  filled: number;
  /** Raw CRC32C state of the object's bytes before `start`: set once hashing reaches `start` (CRC32C on). */
  crcBefore: number | undefined;
  /** performance.now() when the first byte arrived. */
  fillStartedAt: number;
}

/** What the window feeds every accepted byte to, in order (an ObjectHasher). */
export interface FillHasher {
  update(bytes: Uint8Array): void;
  /** Raw CRC32C of everything fed so far, or undefined when CRC32C is not computed. */
  readonly crcState: number | undefined;
}

/** The next request to send: bytes from the committed offset, and whether they end the object. */
export interface Span {
  offset: number;
  body: Buffer;
  /** True when `body` reaches the end of the object (the request carries the total size). */
  final: boolean;
}

/** Bytes hashed per turn of the event loop by hashInBackground(): about 0.25 ms of native CRC32C. */
const HASH_STEP = 1024 * 1024;

/** How many slab fill times `fastestRecentFillMs` looks back over. */
const RECENT_FILLS = 4;
/** The first allocation's size unit; it then doubles. */
const FIRST_ALLOCATION = 256 * 1024;
const NO_MEMORY = Buffer.alloc(0);

/** Bytes accepted but not committed, in a bounded, reused allocation. */
export class ChunkBuffer {
  readonly #chunkSize: number;
  readonly #maxChunks: number;
  readonly #slabs: Slab[] = [];
  /** Free region indexes (unordered; see #takeRegion). */
  readonly #free: number[];
  #memory: Buffer | undefined;
  #accepted: number;
  #windowStart: number;
  #ended = false;
  #disposed = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  /** Bytes below this offset are already committed (a resumed session): they are handed to #onSkip, not held. */
  #skipUntil = 0;
  #onSkip: ((bytes: Uint8Array) => void) | undefined;
  readonly #hasher: FillHasher | undefined;
  /** Everything below this offset has been fed to #hasher (skipped bytes are fed by #onSkip). */
  #hashedUpTo: number;
  /** Fill times of the most recently filled slabs (ms, oldest first). */
  readonly #fills: number[] = [];
  /** The last write did not fit: the writer holds bytes beyond the window, so its last full slab is not the end. */
  #overflow = false;
  /**
   * The object's declared size, if any. GCS completes such a session as soon as that many bytes arrive, so the
   * bytes that reach it are held until `end()`: they go out in the final request, never in one the server would
   * finalize before the writer is done (a writer that then wrote more would have replaced the object).
   */
  readonly #declaredSize: number | undefined;
  /** A hashInBackground() run is under way. */
  #hashingInBackground = false;

  /**
   * `startOffset` is the object offset of the first byte the writer will supply (non-zero when resuming); `hasher`,
   * if given, is fed every held byte in order and must already cover the bytes before `startOffset`.
   */
  constructor(chunkSize: number, maxChunks: number, startOffset = 0, hasher?: FillHasher, declaredSize?: number) {
    this.#declaredSize = declaredSize;
    this.#chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
    this.#accepted = startOffset;
    this.#windowStart = startOffset;
    this.#hashedUpTo = startOffset;
    this.#hasher = hasher;
    this.#free = Array.from({ length: maxChunks }, (_, i) => i);
  }

  /**
   * The session already holds everything below `offset`: the writer's bytes up to there are passed to `onSkip`
   * (which must feed them to the hasher) instead of being held and sent. Only valid before anything was written.
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

  /** Bytes currently allocated for the window: from 0 before the first write up to `chunkSize × maxChunks`. */
  get bytesAllocated(): number {
    return this.#memory?.length ?? 0;
  }

  /** The shortest time the writer took to fill one of the last few slabs, first byte to last (ms). */
  get fastestRecentFillMs(): number | undefined {
    let fastest: number | undefined;
    for (const ms of this.#fills) if (fastest === undefined || ms < fastest) fastest = ms;
    return fastest;
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
      this.#hashedUpTo = this.#accepted;
      copied += skip;
      if (this.#accepted === this.#skipUntil) this.#notifyReader();
    }
    let remaining = src.length - from - copied;
    while (remaining > 0) {
      let last = this.#slabs.at(-1);
      if (!last || last.filled === this.#chunkSize) {
        if (this.#slabs.length >= this.#maxChunks) break;
        const previousFull = last !== undefined;
        last = this.#newSlab();
        // A byte beyond a full chunk proves that chunk is not the last: it can go out now (see nextSpan).
        if (previousFull) this.#notifyReader();
      }
      const n = Math.min(remaining, this.#chunkSize - last.filled);
      this.#reserve(last.region * this.#chunkSize + last.filled + n);
      last.buf.set(n === src.length && from === 0 ? src : src.subarray(from + copied, from + copied + n), last.filled);
      last.filled += n;
      this.#accepted += n;
      copied += n;
      remaining -= n;
      if (last.filled === this.#chunkSize) {
        if (this.#fills.push(performance.now() - last.fillStartedAt) > RECENT_FILLS) this.#fills.shift();
        // With no room for another slab the full chunk must go now (see nextSpan).
        if (this.#slabs.length >= this.#maxChunks) this.#notifyReader();
      }
    }
    const overflow = remaining > 0;
    // Bytes that did not fit prove the held data is not the end of the object (see nextSpan).
    if (overflow && !this.#overflow) this.#notifyReader();
    this.#overflow = overflow;
    return copied;
  }

  /** No more writes: the object ends at `bytesAccepted`. */
  end(): void {
    this.#ended = true;
    this.#notifyReader();
  }

  /**
   * The raw CRC32C state of the object's bytes below `offset` (within the window), or undefined when no CRC32C is
   * computed. Costs nothing at a slab boundary or at the end of what was accepted; elsewhere it hashes part of one
   * slab.
   */
  crcAt(offset: number): number | undefined {
    if (this.#hasher?.crcState === undefined) return undefined;
    if (offset < this.#windowStart || offset > this.#accepted) {
      throw new RangeError(`crcAt(${offset}) outside the window [${this.#windowStart}, ${this.#accepted}]`);
    }
    if (offset > this.#hashedUpTo) this.#hashHeld(offset - this.#hashedUpTo);
    if (offset === this.#hashedUpTo) return this.#hasher.crcState;
    for (const slab of this.#slabs) {
      if (offset < slab.start || offset >= slab.start + slab.filled) continue;
      return continueCrc32c(slab.crcBefore!, slab.buf.subarray(0, offset - slab.start));
    }
    throw new RangeError(`crcAt(${offset}): no slab holds it`);
  }

  /**
   * The next request body, or undefined if there is not yet enough data. By default: a full chunk starting at the
   * committed offset, or (after `end()`) the rest of the object when it fits in one slab. With `whole`: nothing
   * until the window is full or ended, then every held byte that sits contiguously in memory, as one request (fewer
   * round trips when the server, not the writer, is the bottleneck). A full window goes once the writer shows more
   * bytes or ends (so that an object that ends there is finalized by that request, not by an extra empty one), or
   * at once with `force`. Never copies, except to realign after the server committed an unaligned offset.
   */
  nextSpan(whole = false, force = false): Span | undefined {
    const first = this.#slabs[0];
    if (this.#accepted < this.#skipUntil) return undefined;
    if (!first) {
      return this.#ended ? { offset: this.#windowStart, body: Buffer.alloc(0), final: true } : undefined;
    }
    const skip = this.#windowStart - first.start;
    if (skip % CHUNK_ALIGNMENT !== 0) {
      this.#realign();
      return this.nextSpan(whole, force);
    }
    // At the declared size the last slab waits for end() (see #declaredSize); the others may go.
    const usable = !this.#ended && this.#accepted === this.#declaredSize ? this.#slabs.length - 1 : this.#slabs.length;
    if (whole) {
      if (!this.#ended && (this.spaceAvailable > 0 || !(this.#overflow || force))) return undefined;
      if (usable === 0) return undefined;
      // Slabs that follow each other in memory form one contiguous body; all but the last of them are full.
      let count = 1;
      while (count < usable && this.#slabs[count]!.region === this.#slabs[count - 1]!.region + 1) count++;
      const final = this.#ended && count === this.#slabs.length;
      return this.#span(count, final);
    }
    const full = first.filled === this.#chunkSize;
    if (this.#ended && this.#slabs.length === 1) return this.#span(1, true);
    if (usable === 0) return undefined;
    // A full chunk goes out as soon as it is known not to be the last (a byte follows it, or the writer holds bytes
    // that did not fit), or when the writer could not go on otherwise. Holding it until then lets an object whose
    // size is a multiple of the chunk end with the data-carrying request instead of an extra empty `bytes */TOTAL`
    // round trip.
    if (full && (this.#slabs.length > 1 || this.#overflow || this.spaceAvailable === 0)) return this.#span(1, false);
    return undefined;
  }

  /** GCS committed everything below `offset`: drop it and recycle emptied slabs. */
  release(offset: number): void {
    if (offset < this.#windowStart || offset > this.#accepted) {
      throw new RangeError(`release(${offset}) outside the window [${this.#windowStart}, ${this.#accepted}]`);
    }
    // Bytes must be hashed before they are dropped.
    if (offset > this.#hashedUpTo) this.#hashHeld(offset - this.#hashedUpTo);
    this.#windowStart = offset;
    let freed = false;
    while (this.#slabs.length > 0) {
      const first = this.#slabs[0]!;
      const end = first.start + first.filled;
      // Keep the last slab while it still has room: the writer is filling it.
      if (end > offset || (this.#slabs.length === 1 && first.filled < this.#chunkSize)) break;
      this.#slabs.shift();
      this.#freeRegion(first.region);
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

  /**
   * Hashes up to `maxBytes` of the held bytes not hashed yet (call while a request is in flight); returns whether
   * any remain.
   */
  hashSome(maxBytes: number): boolean {
    if (this.#disposed) return false;
    this.#hashHeld(maxBytes);
    return this.#hasher !== undefined && this.#hashedUpTo < this.#accepted;
  }

  /**
   * Hashes held bytes a step per turn of the event loop until caught up (call when a request goes out): while it is
   * in flight the CPU would otherwise wait, and the writer then fills without hashing (commits and the final span
   * hash whatever is left themselves).
   */
  hashInBackground(): void {
    if (this.#hashingInBackground) return;
    this.#hashingInBackground = true;
    const step = (): void => {
      if (this.hashSome(HASH_STEP)) setImmediate(step);
      else this.#hashingInBackground = false;
    };
    setImmediate(step);
  }

  /** Wakes every waiter without changing anything (they re-check their own conditions, e.g. an abort). */
  interrupt(): void {
    this.#notifyWriter();
    this.#notifyReader();
  }

  /** Whether `dispose()` was called: the upload has ended and nothing more is accepted. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Drops every buffer (after the upload ended, either way). */
  dispose(): void {
    this.#disposed = true;
    this.#slabs.length = 0;
    this.#memory = undefined;
    this.#notifyWriter();
    this.#notifyReader();
  }

  /** A span of the first `count` slabs (contiguous in memory) from the committed offset. */
  #span(count: number, final: boolean): Span {
    const first = this.#slabs[0]!;
    const last = this.#slabs[count - 1]!;
    if (final) this.#hashHeld();
    const base = first.region * this.#chunkSize;
    const body = this.#memory!.subarray(base + (this.#windowStart - first.start), last.region * this.#chunkSize + last.filled);
    // Every chunk but the last must be a multiple of 256 KiB: the skip is aligned and every slab but the last full.
    return { offset: this.#windowStart, body, final };
  }

  #newSlab(): Slab {
    const region = this.#takeRegion();
    const slab: Slab = {
      region,
      buf: this.#view(region),
      start: this.#accepted,
      filled: 0,
      crcBefore: this.#hashedUpTo === this.#accepted ? this.#hasher?.crcState : undefined,
      fillStartedAt: performance.now(),
    };
    this.#slabs.push(slab);
    return slab;
  }

  /** The part of the allocation that holds `region` (shorter than a chunk, or empty, until the allocation grows). */
  #view(region: number): Buffer {
    const start = region * this.#chunkSize;
    return (this.#memory ?? NO_MEMORY).subarray(start, start + this.#chunkSize);
  }

  /**
   * Makes the allocation at least `end` bytes long: doubling from 256 KiB (or from its current size) within the
   * first chunk, the whole window beyond it; copies what the slabs hold and re-points their views.
   */
  #reserve(end: number): void {
    const old = this.#memory;
    if (old !== undefined && old.length >= end) return;
    const window = this.#chunkSize * this.#maxChunks;
    let size = old?.length ?? FIRST_ALLOCATION;
    while (size < end) size *= 2;
    // Beyond the first chunk, spans may soon go out: no growth may be left for later (see the class comment).
    if (end > this.#chunkSize) size = window;
    // allocUnsafeSlow: a dedicated allocation, not a slice of Node's shared pool that could pin other memory.
    const memory = Buffer.allocUnsafeSlow(Math.min(size, window));
    for (const slab of this.#slabs) {
      const start = slab.region * this.#chunkSize;
      if (old !== undefined && slab.filled > 0) old.copy(memory, start, start, start + slab.filled);
    }
    this.#memory = memory;
    for (const slab of this.#slabs) slab.buf = this.#view(slab.region);
  }

  /** The lowest free region: slabs then tend to follow each other in memory. */
  #takeRegion(): number {
    let at = 0;
    for (let i = 1; i < this.#free.length; i++) if (this.#free[i]! < this.#free[at]!) at = i;
    const region = this.#free[at]!;
    this.#free[at] = this.#free.at(-1)!;
    this.#free.pop();
    return region;
  }

  #freeRegion(region: number): void {
    this.#free.push(region);
  }

  /**
   * Feeds up to `limit` held bytes not yet hashed to the hasher, in order, recording the CRC32C state at every slab
   * start it passes.
   */
  #hashHeld(limit = Infinity): void {
    const hasher = this.#hasher;
    if (hasher === undefined) return;
    let budget = limit;
    for (const slab of this.#slabs) {
      if (budget <= 0 || this.#hashedUpTo >= this.#accepted) return;
      const end = slab.start + slab.filled;
      if (slab.start === this.#hashedUpTo) slab.crcBefore = hasher.crcState;
      if (end <= this.#hashedUpTo) continue;
      const from = this.#hashedUpTo - slab.start;
      const to = Math.min(slab.filled, from + budget);
      hasher.update(slab.buf.subarray(from, to));
      budget -= to - from;
      this.#hashedUpTo = slab.start + to;
    }
  }

  /**
   * The server committed an offset that is not 256 KiB aligned relative to its slab. Shift the whole window so
   * that the committed offset sits at the start of the first slab; the next full chunk is then aligned again.
   * Rare (GCS commits aligned amounts), so an in-place move of the window, and rehashing it for the slabs' new
   * CRC32C states, are fine.
   */
  #realign(): void {
    const shift = this.#windowStart - this.#slabs[0]!.start;
    let crc = this.crcAt(this.#windowStart);
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
      slab.crcBefore = crc;
      if (crc !== undefined) crc = continueCrc32c(crc, slab.buf.subarray(0, slab.filled));
    }
    while (this.#slabs.length > 1 && this.#slabs.at(-1)!.filled === 0) {
      this.#freeRegion(this.#slabs.pop()!.region);
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
