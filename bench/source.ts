/**
 * The data every contender uploads: `size` bytes in `writeSize` writes, each a fresh buffer filled from one random
 * block generated up front.
 *
 * Why this shape:
 * - Generating data costs almost nothing (one memcpy per byte, about 0.1 s of CPU per GiB) and exactly the same for
 *   every contender, so differences in CPU are the contenders'.
 * - Each write is a new buffer, as from a real source (a file, a socket, gzip): a contender that holds on to written
 *   buffers pays for them in RSS. Handing out views of one shared block would hide that. Writes under 4 KiB come
 *   from Node's buffer pool (`Buffer.allocUnsafe`), as small buffers usually do.
 * - The data is random and the block length is a prime (not a multiple of any write or chunk size), so no two
 *   chunks are alike: nothing can compress, deduplicate or cache its way to a better number.
 * - Writes go straight into the target, honouring `write()`'s return value and `'drain'`; no Readable sits in
 *   between, so the source adds no per-write stream overhead of its own.
 * - While the target keeps accepting, the source still gives the event loop a turn (`setImmediate`) every 64 KiB,
 *   as a file, socket or gzip source does between its reads. A source that never yields would fill a whole chunk
 *   buffer (8 MiB) in one go and keep the contender from feeding its socket or even opening its session meanwhile;
 *   no real I/O source behaves like that. The cost is one `setImmediate` per 64 KiB, for everyone.
 * - A paced source (`bytesPerSecond`, issue 14) stands for a slow producer (a log tail, a sensor, a chat): each write
 *   waits for its slot on a fixed timetable from the first write, so its average rate is the target whatever the
 *   timers' jitter; a write delayed by backpressure is followed at once by those that fell due meanwhile.
 * - Sources of one many-stream run share one random block (one each would add 1 MiB per stream to the RSS being
 *   measured) and start at different offsets in it, so that no two objects are alike; each keeps the CRC32C of what
 *   it wrote for the harness to compare with what the server stored.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** Length of the random block: the largest prime below 1 MiB (2^20 - 3). */
const BLOCK_LENGTH = 1_048_573;
/** Bytes written between two turns of the event loop when the target keeps accepting (see the module comment). */
const YIELD_EVERY = 64 * 1024;

/** What `writeTo` writes into: a `stream.Writable` or an `http.ClientRequest`. */
export interface WriteTarget {
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  readonly destroyed: boolean;
}

/** How a source of a many-stream run differs from a lone one. */
export interface BenchSourceOptions {
  /** The random block to copy from (`randomBlock()`), shared by the run's sources. Default: a block of its own. */
  block?: Buffer;
  /** Where in the block the data starts. Default 0. */
  offset?: number;
  /** Average rate, bytes per second: one write every `writeSize / bytesPerSecond` s. Default: as fast as accepted. */
  bytesPerSecond?: number;
  /** Delay before the first write, ms, so that paced sources do not tick together. Default 0. */
  startDelayMs?: number;
  /**
   * Keep a CRC32C of the bytes written (`crc32c`) with this function (`@node-rs/crc32`'s `crc32c`). Passed in, not
   * imported here, so that single-stream runs, which need none, load no extra module into the RSS they measure.
   */
  checksum?: (data: Buffer, initial: number) => number;
  /** Called after each write with the bytes written so far (issue 15: sampling the data at risk). */
  onWrite?: (bytesWritten: number) => void;
}

/** A random block of the length every source copies from. */
export function randomBlock(): Buffer {
  return randomBytes(BLOCK_LENGTH);
}

/** `size` bytes of random data in writes of `writeSize` (the last one may be shorter). */
export class BenchSource {
  readonly size: number;
  readonly writeSize: number;
  readonly #block: Buffer;
  readonly #intervalMs: number | undefined;
  readonly #startDelayMs: number;
  readonly #checksum: ((data: Buffer, initial: number) => number) | undefined;
  readonly #onWrite: ((bytesWritten: number) => void) | undefined;
  #cursor: number;
  #crc = 0;
  #bytesWritten = 0;
  #started = false;

  constructor(size: number, writeSize: number, options: BenchSourceOptions = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
    if (!Number.isSafeInteger(writeSize) || writeSize <= 0) throw new RangeError(`writeSize must be a positive integer, got ${writeSize}`);
    const { bytesPerSecond, block = randomBlock(), offset = 0, startDelayMs = 0 } = options;
    if (bytesPerSecond !== undefined && !(bytesPerSecond > 0))
      throw new RangeError(`bytesPerSecond must be positive, got ${bytesPerSecond}`);
    if (block.length !== BLOCK_LENGTH) throw new RangeError(`the block must have ${BLOCK_LENGTH} bytes, got ${block.length}`);
    this.size = size;
    this.writeSize = writeSize;
    this.#block = block;
    this.#cursor = ((offset % BLOCK_LENGTH) + BLOCK_LENGTH) % BLOCK_LENGTH;
    this.#intervalMs = bytesPerSecond === undefined ? undefined : (writeSize / bytesPerSecond) * 1000;
    this.#startDelayMs = startDelayMs;
    this.#checksum = options.checksum;
    this.#onWrite = options.onWrite;
  }

  /** Bytes handed to the target so far. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** The CRC32C of the bytes written so far, base64 of the big-endian value as GCS gives it (needs `checksum`). */
  get crc32c(): string {
    if (this.#checksum === undefined) throw new Error('the source keeps no checksum: pass { checksum: crc32c }');
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(this.#crc >>> 0);
    return bytes.toString('base64');
  }

  /**
   * Writes all `size` bytes into `target`, waiting for `'drain'` whenever `write()` returns false, then calls
   * `end()`. Rejects if the target errors or closes first. Call once.
   */
  async writeTo(target: WriteTarget): Promise<void> {
    if (this.#started) throw new Error('a BenchSource can be written only once');
    this.#started = true;
    const intervalMs = this.#intervalMs;
    const startedAt = performance.now() + this.#startDelayMs;
    let writes = 0;
    let sinceYield = 0;
    while (this.#bytesWritten < this.size) {
      if (intervalMs !== undefined) {
        // The timetable runs from the first slot, so timer lateness never accumulates into a lower rate.
        const wait = startedAt + writes * intervalMs - performance.now();
        if (wait > 0) await sleep(wait);
        writes += 1;
      }
      if (target.destroyed) throw new Error(`the target was destroyed after ${this.#bytesWritten} of ${this.size} bytes`);
      const piece = this.#next(Math.min(this.writeSize, this.size - this.#bytesWritten));
      this.#bytesWritten += piece.length;
      if (this.#checksum !== undefined) this.#crc = this.#checksum(piece, this.#crc);
      sinceYield += piece.length;
      const accepting = target.write(piece);
      this.#onWrite?.(this.#bytesWritten);
      if (!accepting) {
        await drained(target, this.#bytesWritten, this.size);
        sinceYield = 0;
      } else if (sinceYield >= YIELD_EVERY) {
        await yieldToEventLoop();
        sinceYield = 0;
      }
    }
    target.end();
  }

  /** A fresh buffer of `length` bytes, copied from the block at a rotating position. */
  #next(length: number): Buffer {
    const piece = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const copied = this.#block.copy(piece, filled, this.#cursor, Math.min(BLOCK_LENGTH, this.#cursor + length - filled));
      filled += copied;
      this.#cursor = (this.#cursor + copied) % BLOCK_LENGTH;
    }
    return piece;
  }
}

function drained(target: WriteTarget, written: number, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      target.off('drain', onDrain);
      target.off('error', onError);
      target.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`the target closed after ${written} of ${size} bytes`));
    };
    target.once('drain', onDrain);
    target.once('error', onError);
    target.once('close', onClose);
  });
}
