/**
 * `MemoryPool`: the blocks that replay windows hold, under one byte ceiling shared by every stream that draws from
 * it. Blocks are `MemoryPool.BLOCK_SIZE` (256 KiB, GCS's request alignment) and are lent to one stream at a time:
 * a window takes them as its writer fills it and gives each back as soon as GCS committed its bytes.
 *
 * Progress for every stream: a stream that holds no block is owed one, and owed blocks come first. A stream that
 * already holds a block may borrow more only while that leaves room for every owed one; a stream with one block
 * can always make progress (fill it, send it, get it back at the commit), so no set of streams can deadlock.
 * Waiting streams are served in arrival order. The pool never allocates past its ceiling: a writer that cannot get
 * a block waits (backpressure).
 *
 * What a stream holds, it holds as slots: one slot is the right to hold 256 KiB, either copied into a pool block
 * (allocated the first time the slot needs one) or as the writer's own buffers kept by reference (`retainWrites`);
 * the ceiling counts slots, so it bounds both kinds alike. Referenced bytes are reported apart (`bytesReferenced`).
 *
 * Free blocks are reused (newest first) and released to the garbage collector after `idleReleaseMs` unused.
 */
import { CRC_TRAILER_BYTES, sharedBlocksWanted } from './crc-worker.js';
import { InvalidArgumentError } from './errors.js';

/** Options of a {@link MemoryPool}. */
export interface MemoryPoolOptions {
  /**
   * Most bytes the pool holds at once, lent and free: a multiple of 256 KiB, at least one block. Default 512 MiB
   * (see {@link MemoryPool.DEFAULT_MAX_BYTES}).
   */
  maxBytes?: number;
  /** Free blocks unused this long are released (ms). Default 5,000. */
  idleReleaseMs?: number;
}

/** A pool's figures, for metrics. */
export interface MemoryPoolStats {
  /** Bytes allocated by the pool: blocks lent plus free (not the writers' buffers held by reference). */
  bytesHeld: number;
  /**
   * Bytes lent to streams: their slots, 256 KiB each, whether a slot holds a pool block or the writer's own buffers
   * (`retainWrites`). This is what the ceiling bounds.
   */
  bytesLent: number;
  /** Bytes of the writers' own buffers that streams hold by reference (`retainWrites`), exactly. */
  bytesReferenced: number;
  /** Bytes allocated but not lent, kept for reuse until idle. */
  bytesFree: number;
  /** The largest `bytesHeld + bytesReferenced` seen: the most memory the pool's streams held at once. */
  peakBytesHeld: number;
  /** The ceiling. */
  maxBytes: number;
  /** Streams that draw from the pool now. */
  streams: number;
  /** Streams whose writer waits for a block. */
  waitingStreams: number;
}

interface FreeBlock {
  block: Buffer;
  freedAt: number;
}

/**
 * The right to hold 256 KiB, lent by a pool to one stream: a pool block once `buffer()` is called (bytes copied
 * in), or only the count (the stream holds the writer's own buffers by reference).
 */
export class PoolSlot {
  readonly #pool: MemoryPool;
  #block: Buffer | undefined;

  /** @internal Created by the pool. */
  constructor(pool: MemoryPool) {
    this.#pool = pool;
  }

  /** The slot's pool block (256 KiB), taken from the pool's free blocks or allocated on the first call. */
  buffer(): Buffer {
    this.#block ??= this.#pool.allocate();
    return this.#block;
  }

  /** @internal The block, taken away as the slot goes back to the pool. */
  release(): Buffer | undefined {
    const block = this.#block;
    this.#block = undefined;
    return block;
  }
}

/** A stream's account with a pool: the blocks it holds and its place in the queue. */
export class PoolAccount {
  readonly #pool: MemoryPool;
  #held = 0;
  #referenced = 0;
  #granted: PoolSlot | undefined;
  #onGranted: (() => void) | undefined;
  #closed = false;

  /** @internal Created by {@link MemoryPool.open}. */
  constructor(pool: MemoryPool) {
    this.#pool = pool;
  }

  /** Blocks this stream holds. */
  get blocksHeld(): number {
    return this.#held;
  }

  /** Whether the stream waits for a block. */
  get waiting(): boolean {
    return this.#onGranted !== undefined;
  }

  /**
   * A slot, if one can be had now; otherwise undefined, and `onGranted` is called once a slot has been set
   * aside for this stream (take it with the next call).
   */
  take(onGranted: () => void): PoolSlot | undefined {
    if (this.#closed) return undefined;
    const granted = this.#granted;
    if (granted !== undefined) {
      this.#granted = undefined;
      return granted;
    }
    const slot = this.#pool.lend(this);
    if (slot !== undefined) return slot;
    this.#onGranted = onGranted;
    this.#pool.enqueue(this);
    return undefined;
  }

  /** Gives a slot back (its bytes are committed). */
  give(slot: PoolSlot): void {
    this.#pool.giveBack(this, slot);
  }

  /** The stream now holds `delta` more (or, negative, fewer) bytes of the writer's own buffers by reference. */
  reference(delta: number): void {
    this.#referenced += delta;
    this.#pool.referenced(delta);
  }

  /** The stream is done: gives back what it holds or was granted, and leaves the queue. */
  close(slots: Iterable<PoolSlot>): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onGranted = undefined;
    // Out of the queues first: a block given back below must not be granted to this account again.
    this.#pool.leave(this);
    for (const slot of slots) this.#pool.giveBack(this, slot);
    if (this.#referenced !== 0) this.reference(-this.#referenced);
    if (this.#granted !== undefined) {
      const granted = this.#granted;
      this.#granted = undefined;
      this.#pool.giveBack(this, granted);
    }
  }

  /** @internal The pool lent (+1) or took back (-1) a block. */
  count(delta: number): void {
    this.#held += delta;
  }

  /** @internal The pool set `slot` aside for this waiting stream. */
  grant(slot: PoolSlot): void {
    if (this.#granted !== undefined) throw new Error('MemoryPool: a second grant before the first was taken');
    this.#granted = slot;
    const wake = this.#onGranted;
    this.#onGranted = undefined;
    wake?.();
  }
}

/**
 * A new block: a dedicated allocation (not a slice of Node's shared pool that could pin other memory). Once a stream
 * uses the CRC32C worker, in shared memory with room for the worker's answer past its end (crc-worker.ts), so that
 * the worker can hash it in place.
 */
function newBlock(): Buffer {
  if (!sharedBlocksWanted()) return Buffer.allocUnsafeSlow(MemoryPool.BLOCK_SIZE);
  return Buffer.from(new SharedArrayBuffer(MemoryPool.BLOCK_SIZE + CRC_TRAILER_BYTES), 0, MemoryPool.BLOCK_SIZE);
}

/** Blocks for replay windows, under a byte ceiling shared by every stream that uses the pool. */
export class MemoryPool {
  /** Bytes per block: GCS's request alignment, so any run of full blocks is a valid request. */
  static readonly BLOCK_SIZE = 256 * 1024;
  /**
   * The default pool's ceiling, 512 MiB: room for 32 fast streams at the default per-stream window of 16 MiB, or
   * about 2,000 slow streams at one block each, while a runaway number of streams in one process waits instead of
   * exhausting a typical container's memory (1 to 4 GiB).
   */
  static readonly DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
  static #default: MemoryPool | undefined;

  /** The process's shared pool, used by every stream that is not given one. */
  static get default(): MemoryPool {
    MemoryPool.#default ??= new MemoryPool();
    return MemoryPool.#default;
  }

  readonly maxBytes: number;
  readonly #capacity: number;
  readonly #idleReleaseMs: number;
  readonly #free: FreeBlock[] = [];
  readonly #accounts = new Set<PoolAccount>();
  /** Open accounts that hold no block (each is owed one): kept as a count, asked at every lend. */
  #holdingNone = 0;
  /** Streams waiting for a block: those holding none first (they are owed one), each group in arrival order. */
  readonly #owed: PoolAccount[] = [];
  readonly #borrowing: PoolAccount[] = [];
  #lent = 0;
  /** Lent slots that hold a pool block. */
  #allocatedLent = 0;
  #referenced = 0;
  #peakHeld = 0;
  #trimTimer: NodeJS.Timeout | undefined;

  constructor(options: MemoryPoolOptions = {}) {
    const maxBytes = options.maxBytes ?? MemoryPool.DEFAULT_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < MemoryPool.BLOCK_SIZE || maxBytes % MemoryPool.BLOCK_SIZE !== 0) {
      throw new InvalidArgumentError(
        `memory pool maxBytes must be a positive multiple of ${MemoryPool.BLOCK_SIZE}, got ${String(maxBytes)}`,
      );
    }
    const idleReleaseMs = options.idleReleaseMs ?? 5_000;
    if (!Number.isSafeInteger(idleReleaseMs) || idleReleaseMs < 0) {
      throw new InvalidArgumentError(`memory pool idleReleaseMs must be a non-negative integer, got ${String(idleReleaseMs)}`);
    }
    this.maxBytes = maxBytes;
    this.#capacity = maxBytes / MemoryPool.BLOCK_SIZE;
    this.#idleReleaseMs = idleReleaseMs;
  }

  /** The pool's figures now. */
  stats(): MemoryPoolStats {
    const block = MemoryPool.BLOCK_SIZE;
    return {
      bytesHeld: (this.#allocatedLent + this.#free.length) * block,
      bytesLent: this.#lent * block,
      bytesReferenced: this.#referenced,
      bytesFree: this.#free.length * block,
      peakBytesHeld: this.#peakHeld,
      maxBytes: this.maxBytes,
      streams: this.#accounts.size,
      waitingStreams: this.#owed.length + this.#borrowing.length,
    };
  }

  /** Releases every free block now (they are otherwise released after `idleReleaseMs` unused). */
  trim(): void {
    this.#free.length = 0;
  }

  /** Opens an account for one stream. */
  open(): PoolAccount {
    const account = new PoolAccount(this);
    this.#accounts.add(account);
    this.#holdingNone += 1;
    return account;
  }

  /** @internal A slot for `account` now, or undefined (see the module comment for who may have one). */
  lend(account: PoolAccount): PoolSlot | undefined {
    const owes = account.blocksHeld === 0;
    // Fairness: nobody overtakes a waiting stream of the same or a higher rank.
    if (this.#owed.length > 0 || (!owes && this.#borrowing.length > 0)) return undefined;
    // A borrower must leave a block for every stream that holds none: they may ask at any moment.
    const reserve = owes ? 0 : this.#holdingNone;
    if (this.#lent + reserve >= this.#capacity) return undefined;
    // Served now: an older request of this account no longer waits.
    this.#remove(this.#owed, account);
    this.#remove(this.#borrowing, account);
    return this.#hand(account);
  }

  /** @internal `account` waits for a block. */
  enqueue(account: PoolAccount): void {
    // One place in one queue: an account that was borrowing and has since given every block back is owed now (two
    // places would get it two grants, and the first would be lost).
    const queue = account.blocksHeld === 0 ? this.#owed : this.#borrowing;
    if (queue.includes(account)) return;
    this.#remove(account.blocksHeld === 0 ? this.#borrowing : this.#owed, account);
    queue.push(account);
  }

  /** @internal `account` gives `slot` back. */
  giveBack(account: PoolAccount, slot: PoolSlot): void {
    account.count(-1);
    if (account.blocksHeld === 0 && this.#accounts.has(account)) this.#holdingNone += 1;
    this.#lent -= 1;
    const block = slot.release();
    if (block !== undefined) {
      this.#allocatedLent -= 1;
      this.#free.push({ block, freedAt: performance.now() });
      this.#scheduleTrim();
    }
    this.#serveWaiting();
  }

  /**
   * @internal A pool block for a lent slot: a free one (newest first) or a new one. Once the CRC32C worker is in use,
   * a free block from before, not in shared memory, is let go for a new one the worker can hash.
   */
  allocate(): Buffer {
    const reused = this.#free.pop()?.block;
    const block = reused !== undefined && (!sharedBlocksWanted() || reused.buffer instanceof SharedArrayBuffer) ? reused : newBlock();
    this.#allocatedLent += 1;
    this.#notePeak();
    return block;
  }

  /** @internal Streams hold `delta` more bytes of their writers' buffers by reference. */
  referenced(delta: number): void {
    this.#referenced += delta;
    if (delta > 0) this.#notePeak();
  }

  #notePeak(): void {
    this.#peakHeld = Math.max(this.#peakHeld, (this.#allocatedLent + this.#free.length) * MemoryPool.BLOCK_SIZE + this.#referenced);
  }

  /** @internal `account` is closed. */
  leave(account: PoolAccount): void {
    if (this.#accounts.delete(account) && account.blocksHeld === 0) this.#holdingNone -= 1;
    this.#remove(this.#owed, account);
    this.#remove(this.#borrowing, account);
    // A stream that held none is no longer owed one: borrowers may have it.
    this.#serveWaiting();
  }

  /** Grants blocks to waiting streams while the rules allow, owed ones first. */
  #serveWaiting(): void {
    while (this.#owed.length > 0 && this.#lent < this.#capacity) {
      const account = this.#owed.shift()!;
      account.grant(this.#hand(account));
    }
    while (this.#owed.length === 0 && this.#borrowing.length > 0) {
      if (this.#lent + this.#holdingNone >= this.#capacity) return;
      const account = this.#borrowing.shift()!;
      account.grant(this.#hand(account));
    }
  }

  /** Lends a slot to `account` (its block is allocated when first asked for). The caller checked the ceiling. */
  #hand(account: PoolAccount): PoolSlot {
    if (account.blocksHeld === 0 && this.#accounts.has(account)) this.#holdingNone -= 1;
    this.#lent += 1;
    account.count(1);
    return new PoolSlot(this);
  }

  #remove(queue: PoolAccount[], account: PoolAccount): void {
    const at = queue.indexOf(account);
    if (at >= 0) queue.splice(at, 1);
  }

  /** Releases free blocks that stayed unused for `idleReleaseMs`; re-arms itself while some remain. */
  #scheduleTrim(): void {
    if (this.#trimTimer !== undefined) return;
    this.#trimTimer = setTimeout(
      () => {
        this.#trimTimer = undefined;
        const cutoff = performance.now() - this.#idleReleaseMs;
        // Oldest first: blocks are reused newest first, so the idle ones sit at the bottom.
        let idle = 0;
        while (idle < this.#free.length && this.#free[idle]!.freedAt <= cutoff) idle += 1;
        this.#free.splice(0, idle);
        if (this.#free.length > 0) this.#scheduleTrim();
      },
      Math.max(1, this.#idleReleaseMs),
    );
    // The pool never keeps a process alive.
    this.#trimTimer.unref();
  }
}
