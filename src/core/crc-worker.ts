/**
 * CRC32C of filled pool blocks on a worker thread, so that the thread that copies writes and feeds sockets does not
 * also hash them. One worker per process, shared by every stream, started at the first block and never keeping the
 * process alive.
 *
 * Once a stream asks for the worker, pool blocks live in shared memory (memory-pool.ts allocates each new one in a
 * SharedArrayBuffer with an 8-byte trailer past its 256 KiB): the worker hashes a block where it is, with nothing
 * copied, and writes its answer into the trailer: the CRC32C, then (atomically) the job's sequence number. The main
 * thread reads the answer without a message back: a ticket is done when the trailer holds its number. A block whose
 * bytes change (reused, realigned) gets a new number, so a late answer for its old bytes never matches.
 *
 * The worker only ever saves work: whoever needs a CRC32C before the answer is there (a commit, the final request)
 * hashes the bytes on its own thread, and if the worker cannot start or dies, every block is hashed there.
 */
import type { Worker } from 'node:worker_threads';
import { nodeRequire } from './node-require.js';

/** Bytes past a shared block where the worker writes its answer: [sequence number, CRC32C] as two int32. */
export const CRC_TRAILER_BYTES = 8;

let blocksShared = false;

/**
 * Whether new pool blocks go in shared memory: only once a stream has asked for the worker (`useSharedBlocks`), so
 * that a process that never uses it allocates its blocks as before. Blocks allocated earlier are hashed on the
 * main thread (`submit` refuses them).
 */
export function sharedBlocksWanted(): boolean {
  return blocksShared;
}

/** From now on, pool blocks are allocated in shared memory, where the worker can hash them. */
export function useSharedBlocks(): void {
  blocksShared = true;
}

/** One block handed to the worker: done when its trailer holds `seq`. */
export interface CrcTicket {
  readonly trailer: Int32Array;
  readonly seq: number;
}

/**
 * The worker's code (CommonJS, run with `eval`): it gets its jobs as a flat list [buffer, length, seq, ...] and the
 * path of the native CRC32C from the main thread, so that it needs no file of this package and works from a bundle.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { crc32c } = require(workerData.crc32cPath);
parentPort.on('message', (jobs) => {
  if (!Array.isArray(jobs)) return parentPort.postMessage(jobs);
  for (let i = 0; i < jobs.length; i += 3) {
    const shared = jobs[i], length = jobs[i + 1], seq = jobs[i + 2];
    const trailer = new Int32Array(shared, length, 2);
    trailer[1] = crc32c(Buffer.from(shared, 0, length)) | 0;
    Atomics.store(trailer, 0, seq);
  }
});`;

/** The process's CRC32C worker. */
export class CrcWorker {
  static #shared: CrcWorker | null | undefined;
  readonly #worker: Worker;
  /** Jobs to post at the next turn of the event loop: one message for every block filled in this turn. */
  #batch: unknown[] = [];
  #alive = true;
  #seq = 0;
  #pings = 0;
  /** `whenIdle` calls not answered yet. */
  #waiting = 0;

  /** The process's worker, started on first use; undefined when none can run (no shared memory, no threads). */
  static shared(): CrcWorker | undefined {
    if (CrcWorker.#shared === undefined) {
      try {
        CrcWorker.#shared = typeof SharedArrayBuffer === 'function' ? new CrcWorker() : null;
      } catch {
        CrcWorker.#shared = null;
      }
    }
    return CrcWorker.#shared ?? undefined;
  }

  private constructor() {
    const { Worker } = nodeRequire('node:worker_threads') as typeof import('node:worker_threads');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { crc32cPath: nodeRequire.resolve('@node-rs/crc32') } });
    worker.unref();
    // A worker that fails or exits answers nothing more: every block is then hashed on the main thread.
    const stop = (): void => {
      this.#alive = false;
      this.#batch = [];
    };
    worker.on('error', stop);
    worker.on('exit', stop);
    this.#worker = worker;
  }

  /**
   * Hands `block` (a view from offset 0 of a shared pool block, with its trailer) to the worker; returns its
   * ticket, or undefined when the block is not in shared memory or the worker is gone.
   */
  submit(block: Buffer): CrcTicket | undefined {
    const memory = block.buffer;
    if (!this.#alive || !(memory instanceof SharedArrayBuffer) || block.byteOffset !== 0) return undefined;
    if (memory.byteLength < block.length + CRC_TRAILER_BYTES) return undefined;
    this.#seq = (this.#seq % 0x7fffffff) + 1;
    const ticket = { trailer: new Int32Array(memory, block.length, 2), seq: this.#seq };
    if (this.#batch.push(memory, block.length, ticket.seq) === 3) setImmediate(() => this.#post());
    return ticket;
  }

  /**
   * Resolves once the worker has answered every block handed to it so far (tests: a block the worker has answered
   * is combined, not hashed again); at once if the worker is gone.
   */
  async whenIdle(): Promise<void> {
    this.#post();
    if (!this.#alive) return;
    const worker = this.#worker;
    const id = ++this.#pings;
    await new Promise<void>((resolve) => {
      const answered = (message: unknown): void => {
        if (message === id) done();
      };
      const done = (): void => {
        worker.off('message', answered).off('exit', done);
        // The worker keeps the process alive only while someone waits for it.
        if (--this.#waiting === 0) worker.unref();
        resolve();
      };
      if (this.#waiting++ === 0) worker.ref();
      worker.on('message', answered).on('exit', done);
      // Messages are handled in order: the answer to this one comes after every job posted before it.
      worker.postMessage(id);
    });
  }

  #post(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (this.#alive && batch.length > 0) this.#worker.postMessage(batch);
  }
}

/** The CRC32C the worker computed for `ticket`, or undefined while it has not. */
export function ticketCrc(ticket: CrcTicket): number | undefined {
  if (Atomics.load(ticket.trailer, 0) !== ticket.seq) return undefined;
  const crc = ticket.trailer[1]!;
  // A later job for the same memory could overwrite the CRC after the number was read: read the number again.
  return Atomics.load(ticket.trailer, 0) === ticket.seq ? crc >>> 0 : undefined;
}
