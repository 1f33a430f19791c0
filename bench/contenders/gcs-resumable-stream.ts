/**
 * This library, as a user would call it: default buffer (a cap of 16 chunks), default validation (CRC32C computed as the
 * data is written, sent with the final request, compared with the stored object before `finish`).
 *
 * Many streams in one process draw from the process's `MemoryPool.default`, or from one
 * `new MemoryPool({ maxBytes: memoryLimit })` created for the process and given to every stream, as a user capping
 * their uploads' memory would do. A scenario's `maxUncommittedMs` goes to every stream; each `progress` event's
 * `bytesCommitted` (the offset GCS confirmed) goes to the harness, which measures the data at risk from it.
 */
import { finished } from 'node:stream/promises';
import { MemoryPool, createGcsWriteStream, type GcsWriteStreamOptions } from '../../src/index.js';
import type { Contender } from '../contender.js';

/** The pool the streams of this process draw from (a process runs one scenario: one `memoryLimit`). */
let pool: MemoryPool | undefined;

/** This library as a user calls it, with `extra` options on top (the `-retain` contender's `retainWrites`). */
export function ours(name: string, description: string, extra: Partial<GcsWriteStreamOptions> = {}): Contender {
  return {
    name,
    description,
    async run({ endpoint, bucket, name: object, size, chunkSize, memoryLimit, maxUncommittedMs }, source, observer) {
      pool ??= memoryLimit === undefined ? MemoryPool.default : new MemoryPool({ maxBytes: memoryLimit });
      const stream = createGcsWriteStream({
        bucket,
        name: object,
        apiEndpoint: endpoint,
        chunkSize,
        memory: pool,
        maxUncommittedMs,
        ...extra,
      });
      // `bytesCommitted` is the offset GCS confirmed.
      stream.on('progress', ({ bytesCommitted }) => observer.committed(bytesCommitted));
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
}

export const contender: Contender = ours(
  'gcs-resumable-stream',
  '`createGcsWriteStream({ bucket, name, apiEndpoint, chunkSize, memory, maxUncommittedMs })`: default bufferChunks (16) and validation (crc32c); `memory`: the default pool (512 MiB) unless the scenario sets a ceiling; `maxUncommittedMs`: the default (10 s) unless the scenario sets one; data at risk from its `progress` events (`bytesCommitted`, confirmed by GCS)',
);
