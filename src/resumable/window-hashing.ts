/**
 * The checksum state of a replay window, in one place: how far the window's bytes have been fed to the object's
 * hasher, the CRC32C state at every block start it passed (so the state at any committed offset, which a checkpoint
 * carries, costs at most part of one block), and hashing a step at a time while a request is in flight (the writer
 * and the socket then leave the CPU idle). Bytes are always fed in object order, exactly once.
 *
 * With a CRC32C worker (crc-worker.ts), each block the writer fills is handed to it at once; when hashing reaches
 * a block the worker has answered for, its CRC32C is combined in instead of the bytes being hashed here. A block
 * without an answer yet is hashed here when its checksum is needed now (a commit, the final request), and waited
 * for when it is not (the background steps).
 */
import { continueCrc32c } from '../core/checksum.js';
import { CrcWorker, ticketCrc, useSharedBlocks, type CrcTicket } from '../core/crc-worker.js';
import { MemoryPool } from '../core/memory-pool.js';
import { viewsOf, type BlockPart } from './block-parts.js';

/** What the window feeds every accepted byte to, in order (an ObjectHasher). */
export interface FillHasher {
  update(bytes: Uint8Array): void;
  /** Adds the next bytes, whose CRC32C (of them alone) is `crc`. */
  updateWithCrc(bytes: Uint8Array, crc: number): void;
  /** Raw CRC32C of everything fed so far, or undefined when it cannot be known. */
  readonly crcState: number | undefined;
}

/** A block as hashing sees it. */
export interface HashedBlock {
  /** The block's bytes, in order. */
  readonly parts: readonly BlockPart[];
  /** Object offset of the block's first byte. */
  readonly start: number;
  /** Bytes the block holds. */
  readonly filled: number;
  /** Raw CRC32C state of the object's bytes before `start`, once hashing passed `start`. */
  crcBefore: number | undefined;
  /** The worker's job for the block's bytes, if it was handed one (see `offload`). */
  ticket?: CrcTicket | undefined;
}

/** Bytes hashed per turn of the event loop in the background: about 0.25 ms of native CRC32C. */
const STEP_BYTES = 1024 * 1024;

/** Feeds a window's blocks to the object's hasher, in order. */
export class WindowHashing {
  readonly #hasher: FillHasher | undefined;
  /** Whether filled blocks go to the process's worker (started at the first one: small uploads never start it). */
  readonly #useWorker: boolean;
  /** Everything below this offset has been fed to the hasher. */
  #hashedUpTo: number;
  #inBackground = false;
  #bytesOnWorker = 0;

  /**
   * `startOffset`: the first offset the window will hold; the hasher must already cover the bytes before it.
   * `useWorker`: hash filled blocks on the process's CRC32C worker.
   */
  constructor(hasher: FillHasher | undefined, startOffset: number, useWorker = false) {
    this.#hasher = hasher;
    this.#hashedUpTo = startOffset;
    this.#useWorker = useWorker && hasher !== undefined && typeof SharedArrayBuffer === 'function';
    if (this.#useWorker) useSharedBlocks();
  }

  /** Bytes whose CRC32C the worker computed. */
  get bytesOnWorker(): number {
    return this.#bytesOnWorker;
  }

  /**
   * `block` is full and all of it is `own` (a shared pool block, from its start): hands it to the worker, unless
   * hashing has reached it already.
   */
  offload(block: HashedBlock, own: Buffer): void {
    const only = block.parts.length === 1 ? block.parts[0] : undefined;
    if (!this.#useWorker || block.start < this.#hashedUpTo || only?.buf !== own || only.from !== 0) return;
    block.ticket = CrcWorker.shared()?.submit(own);
  }

  /** The offset up to which bytes were fed. */
  get hashedUpTo(): number {
    return this.#hashedUpTo;
  }

  /** The CRC32C state to record as `crcBefore` of a block that starts at `start`, if known now. */
  crcBeforeNew(start: number): number | undefined {
    return this.#hashedUpTo === start ? this.#hasher?.crcState : undefined;
  }

  /** Bytes up to `offset` were fed by someone else (the resume skip guard). */
  skippedTo(offset: number): void {
    this.#hashedUpTo = offset;
  }

  /**
   * Feeds up to `limit` bytes not yet hashed (all by default); returns whether any held bytes remain unhashed. With
   * `waitForWorker`, stops at a block the worker has not answered for yet, or one still filling that it will be
   * given (and returns false: its answer, not more steps, is what hashing waits for).
   */
  hash(blocks: readonly HashedBlock[], limit = Infinity, waitForWorker = false): boolean {
    const hasher = this.#hasher;
    if (hasher === undefined) return false;
    let budget = limit;
    for (const block of blocks) {
      const end = block.start + block.filled;
      if (block.start === this.#hashedUpTo) block.crcBefore = hasher.crcState;
      if (end <= this.#hashedUpTo) continue;
      if (budget <= 0) return true;
      const from = this.#hashedUpTo - block.start;
      if (from === 0 && block.ticket !== undefined) {
        const crc = ticketCrc(block.ticket);
        if (crc === undefined && waitForWorker) return false;
        if (crc !== undefined) {
          // One run of the pool buffer from its start (offload takes no other block), so one view.
          hasher.updateWithCrc(block.parts[0]!.buf.subarray(0, block.filled), crc);
          this.#bytesOnWorker += block.filled;
          budget -= block.filled;
          this.#hashedUpTo = end;
          continue;
        }
      }
      // A block still filling goes to the worker once full: the background leaves it alone.
      if (waitForWorker && this.#useWorker && from === 0 && block.ticket === undefined && block.filled < MemoryPool.BLOCK_SIZE)
        return false;
      const to = Math.min(block.filled, from + budget);
      for (const view of viewsOf(block.parts, from, to)) hasher.update(view);
      budget -= to - from;
      this.#hashedUpTo = block.start + to;
    }
    const last = blocks.at(-1);
    return last !== undefined && this.#hashedUpTo < last.start + last.filled;
  }

  /** Feeds the bytes below `offset` (within the blocks) that are not hashed yet. */
  hashUpTo(blocks: readonly HashedBlock[], offset: number): void {
    if (offset > this.#hashedUpTo) this.hash(blocks, offset - this.#hashedUpTo);
  }

  /**
   * The raw CRC32C state of the object's bytes below `offset`, which must lie within `blocks` (or at their end),
   * or undefined when no CRC32C can be known. Costs nothing at a block start or at the end of what was hashed.
   */
  crcAt(blocks: readonly HashedBlock[], offset: number): number | undefined {
    if (this.#hasher?.crcState === undefined) return undefined;
    this.hashUpTo(blocks, offset);
    if (offset === this.#hashedUpTo) return this.#hasher.crcState;
    for (const block of blocks) {
      if (offset < block.start || offset >= block.start + block.filled) continue;
      return crcOfParts(block.crcBefore!, block.parts, offset - block.start);
    }
    throw new RangeError(`crcAt(${offset}): no block holds it`);
  }

  /**
   * The blocks were rewritten in place from `offset` on (the window realigned them): records each block's
   * `crcBefore` anew, from the state at `offset`, and keeps what was hashed.
   */
  rebase(blocks: readonly HashedBlock[], crcAtOffset: number | undefined): void {
    let crc = crcAtOffset;
    for (const block of blocks) {
      // Its bytes moved: an answer for them, given or to come, no longer holds.
      block.ticket = undefined;
      block.crcBefore = crc;
      if (crc !== undefined) crc = crcOfParts(crc, block.parts, block.filled);
    }
  }

  /**
   * Hashes a step per turn of the event loop until `blocks()` is caught up (call when a request goes out): while it
   * is in flight the CPU would otherwise wait, and the writer then fills without hashing.
   */
  inBackground(blocks: () => readonly HashedBlock[] | undefined): void {
    if (this.#inBackground) return;
    this.#inBackground = true;
    const step = (): void => {
      const current = blocks();
      if (current !== undefined && this.hash(current, STEP_BYTES, true)) setImmediate(step);
      else this.#inBackground = false;
    };
    setImmediate(step);
  }
}

/** `crc` continued over the first `length` bytes of a block made of `parts`. */
function crcOfParts(crc: number, parts: readonly BlockPart[], length: number): number {
  let state = crc;
  for (const view of viewsOf(parts, 0, length)) state = continueCrc32c(state, view);
  return state;
}
