/**
 * This library, as a user would call it: default buffer (two chunks), default validation (CRC32C computed as the
 * data is written, sent with the final request, compared with the stored object before `finish`).
 *
 * Many streams in one process draw from the process's `MemoryPool.default`, or from one
 * `new MemoryPool({ maxBytes: memoryLimit })` created for the process and given to every stream, as a user capping
 * their uploads' memory would do.
 */
import { finished } from 'node:stream/promises';
import { MemoryPool, createGcsWriteStream } from '../../src/index.js';
import type { Contender } from '../contender.js';

/** The pool the streams of this process draw from (a process runs one scenario: one `memoryLimit`). */
let pool: MemoryPool | undefined;

export const contender: Contender = {
  name: 'gcs-resumable-stream',
  description:
    '`createGcsWriteStream({ bucket, name, apiEndpoint, chunkSize, memory })`: default bufferChunks (2) and validation (crc32c); `memory`: the default pool (512 MiB) unless the scenario sets a ceiling',
  async run({ endpoint, bucket, name, size, chunkSize, memoryLimit }, source) {
    pool ??= memoryLimit === undefined ? MemoryPool.default : new MemoryPool({ maxBytes: memoryLimit });
    const stream = createGcsWriteStream({ bucket, name, apiEndpoint: endpoint, chunkSize, memory: pool });
    // Both settle: a failed upload rejects `finished`, and `writeTo` rejects once the stream is destroyed.
    await Promise.all([source.writeTo(stream), finished(stream)]);
    const stored = stream.object?.size;
    if (stored !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
  sharedMemory() {
    if (pool === undefined) return undefined;
    const { peakBytesHeld, maxBytes } = pool.stats();
    return { peakBytesHeld, maxBytes };
  },
};
