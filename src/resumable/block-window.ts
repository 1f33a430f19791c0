/**
 * The replay window: every byte accepted from the writer and not yet committed by GCS, held in 256 KiB blocks lent
 * by a {@link MemoryPool} (as slots: see memory-pool.ts). Writes are copied in once into the block's pool buffer, or
 * with `retainWrites` kept by reference (the writer's own buffers, views in the block's parts: see `#retains`);
 * requests are lists of views of the blocks (gather writes, nothing is copied on the way out); a block goes back to
 * the pool as soon as every byte in it is committed. What the window holds therefore follows the stream's rate: a
 * slow stream holds one block, a fast one as many as its target allows.
 *
 * The target (how far the writer may get ahead of GCS) starts at one block and grows when memory is what holds the
 * writer back: it finds the window full while a request is in flight. It grows up to two requests' worth, and up
 * to the per-stream cap while the pacer finds answer latency dominant; it shrinks back when the writer no longer
 * fills it (see `pacing.ts`, `nextWindowTarget`). The pool's ceiling bounds every window together.
 *
 * Invariant: blocks are in offset order, every block but the last is full, and the first starts at or below the
 * committed offset; block starts sit at the committed offset plus multiples of 256 KiB (an unaligned commit, rare,
 * shifts the bytes so that they do again: see #realign). The window is [committed, bytesAccepted).
 *
 * Over 350 lines because every method keeps that one invariant, which is easier to check in one file; the checksum
 * state (window-hashing.ts), the target's arithmetic (pacing.ts) and the memory (memory-pool.ts) are apart.
 */
import { nextWindowTarget, type RequestMode } from './pacing.js';
import { MemoryPool, type PoolAccount, type PoolSlot } from '../core/memory-pool.js';
import { viewsOf, type BlockPart } from './block-parts.js';
import { WindowHashing, type FillHasher, type HashedBlock } from './window-hashing.js';

const BLOCK = MemoryPool.BLOCK_SIZE;

/**
 * With `retainWrites`, the smallest write kept by reference: below it, the bookkeeping of one more part (and one
 * more piece in the request's writev) costs more than copying the bytes.
 */
const RETAIN_MIN_BYTES = 4096;

interface Block extends HashedBlock {
  readonly slot: PoolSlot;
  start: number;
  filled: number;
  parts: BlockPart[];
  /** Bytes of the slot's pool buffer in use (copied bytes go there, in order). */
  ownUsed: number;
  /** Bytes of the block held by reference (views of the writer's buffers). */
  referenced: number;
  /** performance.now() when its first byte arrived. */
  fillStartedAt: number;
}

/** The next request to send: bytes from the committed offset, and whether they end the object. */
export interface Span {
  offset: number;
  /** The body, as views of the window's blocks, in order. */
  pieces: Buffer[];
  /** Bytes in `pieces`. */
  length: number;
  /** True when the body reaches the end of the object (the request carries the total size). */
  final: boolean;
}

/** How a window is sized. */
export interface WindowLimits {
  /** Bytes a request carries at most while answer latency does not dominate (`chunkSize`). */
  requestBytes: number;
  /** Most bytes the window may hold (`chunkSize × bufferChunks`). */
  capBytes: number;
  /**
   * Requests of exactly `requestBytes` (adaptive requests off): the target is the cap from the start, and a
   * request waits for a whole chunk unless the writer waits for the pool (then the full blocks go: no deadlock).
   */
  exact: boolean;
  /** Keep the writer's buffers by reference instead of copying them (the `retainWrites` option; see `#retains`). */
  retainWrites?: boolean;
  /** Hash filled blocks on the process's CRC32C worker (the `checksumWorker` option; see window-hashing.ts). */
  checksumWorker?: boolean;
}

/** How many block fill times `recentFillMs` looks back over (one default chunk). */
const RECENT_FILLS = 32;

/** Bytes accepted but not committed, in blocks lent by a pool. */
export class BlockWindow {
  readonly #limits: WindowLimits;
  readonly #account: PoolAccount;
  readonly #blocks: Block[] = [];
  readonly #hashing: WindowHashing;
  #accepted: number;
  #committed: number;
  #ended = false;
  #disposed = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  /** Bytes below this offset are already committed (a resumed session): they are handed to #onSkip, not held. */
  #skipUntil = 0;
  #onSkip: ((bytes: Uint8Array) => void) | undefined;
  /** Fill times of the most recently filled blocks (ms of the source's clock, oldest first; see recentFillMs). */
  readonly #fills: number[] = [];
  /** When the previous block filled, on the source's clock. */
  #lastFilledAt: number | undefined;
  /** Time the writer spent waiting for room so far, and since when it waits now. */
  #waitedMs = 0;
  #waitingSince: number | undefined;
  /** #waitedMs at the previous commit: the writer's wait through the request that just ended is the difference. */
  #waitedAtCommit = 0;
  /** The last write did not fit: the writer holds bytes beyond the window, so its last full block is not the end. */
  #overflow = false;
  /**
   * The object's declared size, if any. GCS completes such a session as soon as that many bytes arrive, so the
   * bytes that reach it are held until `end()`: they go out in the final request, never in one the server would
   * finalize before the writer is done (a writer that then wrote more would have replaced the object).
   */
  readonly #declaredSize: number | undefined;
  /** Blocks the writer may hold (see the module comment). */
  #targetBlocks = 1;
  /** The most blocks held since the last commit. */
  #peakBlocks = 0;
  /** How far the target may grow now, in bytes (the pacer's `growToBytes`). */
  #growToBytes: number;

  /**
   * `startOffset` is the object offset of the first byte the writer will supply (non-zero when resuming); `hasher`,
   * if given, is fed every held byte in order and must already cover the bytes before `startOffset`.
   */
  constructor(limits: WindowLimits, account: PoolAccount, startOffset = 0, hasher?: FillHasher, declaredSize?: number) {
    this.#limits = limits;
    this.#account = account;
    this.#accepted = startOffset;
    this.#committed = startOffset;
    this.#hashing = new WindowHashing(hasher, startOffset, limits.checksumWorker === true);
    this.#declaredSize = declaredSize;
    this.#growToBytes = Math.min(limits.capBytes, 2 * limits.requestBytes);
    if (limits.exact) this.#targetBlocks = Math.max(1, Math.floor(limits.capBytes / BLOCK));
  }

  /**
   * The session already holds everything below `offset`: the writer's bytes up to there are passed to `onSkip`
   * (which must feed them to the hasher) instead of being held and sent. Only valid before anything was written.
   */
  skipTo(offset: number, onSkip: (bytes: Uint8Array) => void): void {
    if (offset < this.#accepted || this.#blocks.length > 0) throw new RangeError('skipTo must precede writes');
    this.#skipUntil = offset;
    this.#committed = offset;
    this.#onSkip = onSkip;
  }

  /** Bytes taken from the writer (including any resumed offset). */
  get bytesAccepted(): number {
    return this.#accepted;
  }

  /** The committed offset: first byte still held. */
  get committed(): number {
    return this.#committed;
  }

  /** End of the range being skipped (see `skipTo`); 0 when not resuming. */
  get skipUntil(): number {
    return this.#skipUntil;
  }

  /** Whether `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Whether `dispose()` was called: the upload has ended and nothing more is accepted. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Bytes of blocks the window holds now. */
  get bytesHeld(): number {
    return this.#blocks.length * BLOCK;
  }

  /** Bytes the window may hold now (its target). */
  get targetBytes(): number {
    return this.#targetBlocks * BLOCK;
  }

  /**
   * How long the source takes to fill `requestBytes` lately (ms): the mean of its recent block fills, scaled. A
   * block's fill is the time since the previous block filled, less the time the writer waited for room: the
   * source's own pace, its pauses included (a source that delivers a block in one write and then pauses is slow),
   * the window's backpressure excluded (a fast source held back is still fast).
   */
  get recentFillMs(): number | undefined {
    const block = this.#meanBlockFillMs();
    return block === undefined ? undefined : block * (this.#limits.requestBytes / BLOCK);
  }

  /** The mean of the recent block fills (see recentFillMs), if any. */
  #meanBlockFillMs(): number | undefined {
    if (this.#fills.length === 0) return undefined;
    let sum = 0;
    for (const ms of this.#fills) sum += ms;
    return sum / this.#fills.length;
  }

  /** Whether the writer's last write found no room (it waits for `spaceChanged()`). */
  get full(): boolean {
    return this.#overflow;
  }

  /** How far the target may grow (the pacer's measurement, within the cap). */
  setGrowTo(bytes: number): void {
    this.#growToBytes = Math.min(this.#limits.capBytes, bytes);
  }

  /** The source's clock: wall time less the time the writer waited for room (see recentFillMs). */
  #sourceNow(): number {
    return performance.now() - this.#totalWaitedMs();
  }

  /** Time the writer spent waiting for room, its current wait included. */
  #totalWaitedMs(): number {
    return this.#waitedMs + (this.#waitingSince === undefined ? 0 : performance.now() - this.#waitingSince);
  }

  /**
   * Blocks the source would have filled, at its recent pace, in the time it waited for room since the previous
   * commit: how far short of the source the window fell through the request that just ended.
   */
  #starvedBlocks(): number {
    const waited = this.#totalWaitedMs();
    const since = waited - this.#waitedAtCommit;
    this.#waitedAtCommit = waited;
    const fill = this.#meanBlockFillMs();
    return fill === undefined ? 0 : Math.floor(since / Math.max(fill, 0.01));
  }

  /**
   * Takes as much of `src[from..]` as fits, copied or (see `#retains`) by reference; returns the number of bytes
   * taken.
   */
  write(src: Uint8Array, from = 0): number {
    if (this.#ended) throw new Error('write after end');
    if (this.#disposed) return 0;
    if (this.#waitingSince !== undefined) {
      this.#waitedMs += performance.now() - this.#waitingSince;
      this.#waitingSince = undefined;
    }
    // The first block's fill counts from the first write.
    this.#lastFilledAt ??= this.#sourceNow();
    let copied = 0;
    if (this.#accepted < this.#skipUntil) {
      const skip = Math.min(src.length - from, this.#skipUntil - this.#accepted);
      this.#onSkip?.(src.subarray(from, from + skip));
      this.#accepted += skip;
      this.#hashing.skippedTo(this.#accepted);
      copied += skip;
      if (this.#accepted === this.#skipUntil) this.#notifyReader();
    }
    let remaining = src.length - from - copied;
    const retain = remaining > 0 && this.#retains(src, remaining);
    while (remaining > 0) {
      let last = this.#blocks.at(-1);
      if (!last || last.filled === BLOCK) {
        const previousFull = last !== undefined;
        const next = this.#newBlock();
        if (next === undefined) break;
        last = next;
        // A byte beyond a full block proves that block is not the last: it can go out now (see nextSpan).
        if (previousFull) this.#notifyReader();
      }
      const n = Math.min(remaining, BLOCK - last.filled);
      const at = from + copied;
      if (retain) this.#reference(last, src as Buffer, at, n);
      else this.#copy(last, n === src.length ? src : src.subarray(at, at + n));
      last.filled += n;
      this.#accepted += n;
      copied += n;
      remaining -= n;
      if (last.filled === BLOCK) {
        const now = this.#sourceNow();
        if (this.#lastFilledAt !== undefined && this.#fills.push(now - this.#lastFilledAt) > RECENT_FILLS) this.#fills.shift();
        this.#lastFilledAt = now;
        // All copied (so all in its pool buffer): the CRC32C worker, if any, can hash it from now on.
        if (last.referenced === 0) this.#hashing.offload(last, last.slot.buffer());
        // A full block may be sendable now (at its target the window takes no further byte, see nextSpan), or it
        // starts the clock of the bound on uncommitted data.
        this.#notifyReader();
      }
    }
    // Kept bytes are hashed as they arrive, not later in the background: a writer that changed a buffer after
    // writing it then sends bytes the checksum does not match, and the upload fails instead of storing them.
    if (retain) this.#hashing.hashUpTo(this.#blocks, this.#accepted);
    const overflow = remaining > 0;
    // Bytes that did not fit prove the held data is not the end of the object, and the full blocks must go now.
    if (overflow) {
      this.#notifyReader();
      this.#waitingSince = performance.now();
    }
    this.#overflow = overflow;
    return copied;
  }

  /**
   * Whether `length` bytes of `src` are kept by reference: with `retainWrites`, a Buffer of at least
   * RETAIN_MIN_BYTES that is at least half of its memory (a small view of a large buffer, such as a slice of Node's
   * shared pool, would keep all of it alive).
   */
  #retains(src: Uint8Array, length: number): boolean {
    return (
      this.#limits.retainWrites === true && length >= RETAIN_MIN_BYTES && Buffer.isBuffer(src) && src.length * 2 >= src.buffer.byteLength
    );
  }

  /** Appends `src[at, at + n)` to `block` by reference. */
  #reference(block: Block, src: Buffer, at: number, n: number): void {
    const last = block.parts.at(-1);
    if (last !== undefined && last.buf === src && last.to === at) last.to += n;
    else block.parts.push({ buf: src, from: at, to: at + n });
    block.referenced += n;
    this.#account.reference(n);
  }

  /** Copies `bytes` into `block`'s pool buffer, after what it holds there. */
  #copy(block: Block, bytes: Uint8Array): void {
    const own = block.slot.buffer();
    own.set(bytes, block.ownUsed);
    const last = block.parts.at(-1);
    if (last !== undefined && last.buf === own && last.to === block.ownUsed) last.to += bytes.length;
    else block.parts.push({ buf: own, from: block.ownUsed, to: block.ownUsed + bytes.length });
    block.ownUsed += bytes.length;
  }

  /** No more writes: the object ends at `bytesAccepted`. */
  end(): void {
    this.#ended = true;
    this.#notifyReader();
  }

  /** The raw CRC32C state of the object's bytes below `offset` (within the window), or undefined when unknown. */
  crcAt(offset: number): number | undefined {
    if (offset < this.#committed || offset > this.#accepted) {
      throw new RangeError(`crcAt(${offset}) outside the window [${this.#committed}, ${this.#accepted}]`);
    }
    return this.#hashing.crcAt(this.#blocks, offset);
  }

  /**
   * The next request body, or undefined if there is not yet enough data. With `chunks`: the full blocks from the
   * committed offset, up to `requestBytes`, once they are known not to end the object; or (after `end()`) the rest
   * of the object when it fits in one request. With `whole`: nothing until the window is at its target or ended,
   * then everything it holds (fewer round trips when the server, not the writer, is the bottleneck); a full window
   * goes once the writer shows more bytes or ends, or at once with `force`. With `pipelined`: half the target,
   * once that much is full (or what is full when the writer waits, or with `force`): the writer refills the other
   * half while it is in flight. Never copies, except to realign after the server committed an unaligned offset.
   */
  nextSpan(mode: RequestMode = 'chunks', force = false): Span | undefined {
    if (this.#accepted < this.#skipUntil) return undefined;
    const first = this.#blocks[0];
    if (!first) return this.#ended ? { offset: this.#committed, pieces: [], length: 0, final: true } : undefined;
    if (first.start !== this.#committed) {
      this.#realign();
      return this.nextSpan(mode, force);
    }
    const atTarget = this.#blocks.length >= this.#targetBlocks && this.#blocks.at(-1)!.filled === BLOCK;
    const limit = mode === 'chunks' ? this.#limits.requestBytes : this.#limits.capBytes;
    if (this.#ended) {
      const count = this.#countWithin(limit);
      return this.#span(count, count === this.#blocks.length);
    }
    if (mode === 'whole' && !atTarget && !this.#overflow) return undefined;
    // Full blocks that may be sent: the last full one only once it is known not to be the end (a byte follows it,
    // or the writer holds bytes that did not fit, or with `force`), and at the declared size never before end(). With
    // requests of a chunk, a window at its target sends it too: the writer could not go on otherwise, and a slow
    // writer's block waiting for its next write would make it wait on a full window through every request (and the
    // window grow for it). With whole or pipelined requests (a fast writer, slow answers) it waits: a writer whose last
    // write filled the window exactly may be about to end (end() follows within a tick or so), and a request of every
    // block would leave an empty one to finalize; the blocks before it go, and a writer that goes on overflows at once.
    let full = this.#blocks.at(-1)!.filled === BLOCK ? this.#blocks.length : this.#blocks.length - 1;
    const tailKnown = full < this.#blocks.length || this.#overflow || (mode === 'chunks' && atTarget) || (mode === 'whole' && force);
    if (!tailKnown || this.#accepted === this.#declaredSize) full = Math.min(full, this.#blocks.length - 1);
    if (full === 0) return undefined;
    // Pipelined: half the target, so that the writer refills the other half while the request is in flight.
    const half = Math.ceil(this.#targetBlocks / 2);
    if (mode === 'pipelined' && !force && !this.#overflow && !atTarget && full < half) return undefined;
    const count = Math.min(full, this.#countWithin(limit), mode === 'pipelined' ? half : Infinity);
    // Less than a whole request goes here only when the writer cannot go on otherwise (the window is at its target,
    // or the writer waits for room; with exact requests, only when the pool makes it wait: a chunk may never fill
    // otherwise). A fast writer so grows the window and fills whole requests, each request's fixed cost spread over
    // chunkSize bytes; a slow writer's full blocks go after a short hold (the uploader's, via flushSpan).
    const short = mode === 'chunks' && count * BLOCK < limit;
    if (short && (this.#limits.exact ? !this.#account.waiting : !(atTarget || this.#overflow))) return undefined;
    return this.#span(count, false);
  }

  /**
   * The end of what could be committed now: the full blocks from the committed offset, except at the declared size
   * (those bytes go with end()). A non-final request can carry no partial block, so the tail waits.
   */
  flushableEnd(): number {
    if (this.#accepted < this.#skipUntil) return this.#committed;
    let end = this.#committed;
    for (const block of this.#blocks) {
      if (block.filled < BLOCK) break;
      end = block.start + BLOCK;
    }
    if (!this.#ended && end === this.#declaredSize) end -= BLOCK;
    return Math.max(this.#committed, end);
  }

  /**
   * When the oldest committable byte arrived (performance.now()), if the window holds a full block; undefined when
   * nothing could be committed before more data or end().
   */
  get committableSince(): number | undefined {
    return this.flushableEnd() > this.#committed ? this.#blocks[0]!.fillStartedAt : undefined;
  }

  /**
   * A request that commits what can be committed up to `until` (at most the cap), whatever the sizing rules would
   * wait for: for flush() and the time bound on uncommitted data. Undefined when nothing below `until` can go.
   */
  flushSpan(until: number): Span | undefined {
    const first = this.#blocks[0];
    if (first === undefined || this.#ended) return undefined;
    if (first.start !== this.#committed) this.#realign();
    const end = Math.min(until, this.flushableEnd());
    const count = Math.min(Math.floor((end - this.#committed) / BLOCK), Math.floor(this.#limits.capBytes / BLOCK));
    return count > 0 ? this.#span(count, false) : undefined;
  }

  /** GCS committed everything below `offset`: drop it, give emptied blocks back, and resize the target. */
  release(offset: number): void {
    if (offset < this.#committed || offset > this.#accepted) {
      throw new RangeError(`release(${offset}) outside the window [${this.#committed}, ${this.#accepted}]`);
    }
    // Bytes must be hashed before they are dropped.
    this.#hashing.hashUpTo(this.#blocks, offset);
    this.#committed = offset;
    let freed = false;
    while (this.#blocks.length > 0) {
      const first = this.#blocks[0]!;
      // Keep a block while it has room (the writer is filling it) or holds uncommitted bytes.
      if (first.start + first.filled > offset || first.filled < BLOCK) break;
      this.#blocks.shift();
      this.#giveBack(first);
      freed = true;
    }
    this.#resize();
    if (freed) {
      // The writer is woken to fill the room; until it has written, it is not known to wait.
      this.#overflow = false;
      this.#notifyWriter();
    }
  }

  /**
   * The writer sat through a wait that committed nothing (the session being opened): the target is resized as after
   * a commit, so that a fast source's first request is not one block.
   */
  waitEnded(): void {
    if (!this.#resize()) return;
    this.#overflow = false;
    this.#notifyWriter();
  }

  /** Resizes the target after a wait (see nextWindowTarget); true if it grew. */
  #resize(): boolean {
    // A writer still waiting on a full window now waited through the request that just ended: memory held it back.
    const starvedBlocks = this.#starvedBlocks();
    const before = this.#targetBlocks;
    if (!this.#limits.exact)
      this.#targetBlocks = nextWindowTarget({
        targetBlocks: this.#targetBlocks,
        blockedAtTarget: this.#overflow && this.#peakBlocks >= this.#targetBlocks && !this.#account.waiting,
        starvedBlocks,
        peakBlocks: this.#peakBlocks,
        growToBlocks: Math.floor(this.#growToBytes / BLOCK),
      });
    this.#peakBlocks = this.#blocks.length;
    return this.#targetBlocks > before;
  }

  /** Resolves when a new span may be available (more data, a full block, or end). */
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

  /** Bytes whose CRC32C the worker computed. */
  get bytesHashedOnWorker(): number {
    return this.#hashing.bytesOnWorker;
  }

  /** Hashes up to `maxBytes` of the held bytes not hashed yet; returns whether any remain. */
  hashSome(maxBytes: number): boolean {
    if (this.#disposed) return false;
    return this.#hashing.hash(this.#blocks, maxBytes);
  }

  /** Hashes held bytes a step per turn of the event loop until caught up (call when a request goes out). */
  hashInBackground(): void {
    this.#hashing.inBackground(() => (this.#disposed ? undefined : this.#blocks));
  }

  /** Wakes every waiter without changing anything (they re-check their own conditions, e.g. an abort). */
  interrupt(): void {
    this.#notifyWriter();
    this.#notifyReader();
  }

  /** Gives every block back (after the upload ended, either way). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#account.close(this.#blocks.map((block) => block.slot));
    this.#blocks.length = 0;
    this.#notifyWriter();
    this.#notifyReader();
  }

  /** How many blocks from the first fit in `limit` bytes (at least one whole block when any is held). */
  #countWithin(limit: number): number {
    return Math.max(1, Math.min(this.#blocks.length, Math.floor(limit / BLOCK)));
  }

  /** A span of the first `count` blocks from the committed offset. */
  #span(count: number, final: boolean): Span {
    if (final) this.#hashing.hash(this.#blocks);
    const pieces: Buffer[] = [];
    let length = 0;
    for (let i = 0; i < count; i++) {
      const block = this.#blocks[i]!;
      for (const piece of viewsOf(block.parts, 0, block.filled)) pieces.push(piece);
      length += block.filled;
    }
    // Every request but the last is a multiple of 256 KiB: it starts at a block start and all its blocks are full.
    return { offset: this.#committed, pieces, length, final };
  }

  /** A new block for the writer, or undefined when the target or the pool says wait (the writer is woken). */
  #newBlock(): Block | undefined {
    if (this.#blocks.length >= this.#targetBlocks) return undefined;
    const slot = this.#account.take(() => this.#notifyWriter());
    if (slot === undefined) return undefined;
    this.#peakBlocks = Math.max(this.#peakBlocks, this.#blocks.length + 1);
    const block: Block = {
      slot,
      start: this.#accepted,
      filled: 0,
      parts: [],
      ownUsed: 0,
      referenced: 0,
      crcBefore: this.#hashing.crcBeforeNew(this.#accepted),
      fillStartedAt: performance.now(),
    };
    this.#blocks.push(block);
    return block;
  }

  /**
   * The server committed an offset inside the first block. Shift every held byte down so that the committed
   * offset sits at the start of the first block: block starts are then aligned with it again, and every block but
   * the last full. Rare (GCS commits aligned amounts), so an in-place move of the window, and new CRC32C states for
   * its blocks, are fine.
   */
  #realign(): void {
    const shift = this.#committed - this.#blocks[0]!.start;
    const crc = this.crcAt(this.#committed);
    // Every block's bytes into its own pool buffer first (kept writes are copied now): then they can move in place.
    const own = this.#blocks.map((block) => this.#materialize(block));
    for (let i = 0; i < this.#blocks.length; i++) {
      const block = this.#blocks[i]!;
      own[i]!.copyWithin(0, Math.min(shift, block.filled), block.filled);
      block.filled = Math.max(0, block.filled - shift);
      block.start += shift;
      const next = this.#blocks[i + 1];
      if (next) {
        const take = Math.min(shift, next.filled);
        own[i]!.set(own[i + 1]!.subarray(0, take), block.filled);
        block.filled += take;
      }
      block.ownUsed = block.filled;
      block.parts = block.filled > 0 ? [{ buf: own[i]!, from: 0, to: block.filled }] : [];
    }
    while (this.#blocks.length > 1 && this.#blocks.at(-1)!.filled === 0) this.#giveBack(this.#blocks.pop()!);
    this.#hashing.rebase(this.#blocks, crc);
    this.#notifyWriter();
  }

  /** Copies `block`'s bytes into its pool buffer, in order from its start (dropping any reference); returns it. */
  #materialize(block: Block): Buffer {
    const own = block.slot.buffer();
    const only = block.parts.length === 1 ? block.parts[0]! : undefined;
    if (block.parts.length === 0 || (only?.buf === own && only.from === 0)) return own;
    // Through a copy: the block's copied bytes may sit in its buffer where others are to go.
    own.set(Buffer.concat([...viewsOf(block.parts, 0, block.filled)], block.filled));
    block.parts = [{ buf: own, from: 0, to: block.filled }];
    block.ownUsed = block.filled;
    this.#dropReferences(block);
    return own;
  }

  /** Gives `block`'s slot back to the pool and stops counting what it held by reference. */
  #giveBack(block: Block): void {
    this.#dropReferences(block);
    this.#account.give(block.slot);
  }

  #dropReferences(block: Block): void {
    if (block.referenced === 0) return;
    this.#account.reference(-block.referenced);
    block.referenced = 0;
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
