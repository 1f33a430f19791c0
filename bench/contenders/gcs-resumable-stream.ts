/**
 * This library, as a user would call it: default buffer (two chunks), default validation (CRC32C computed as the
 * data is written, sent with the final request, compared with the stored object before `finish`).
 */
import { finished } from 'node:stream/promises';
import { createGcsWriteStream } from '../../src/index.js';
import type { Contender } from '../contender.js';

export const contender: Contender = {
  name: 'gcs-resumable-stream',
  description: '`createGcsWriteStream({ bucket, name, apiEndpoint, chunkSize })`: default bufferChunks (2) and validation (crc32c)',
  async run({ endpoint, bucket, name, size, chunkSize }, source) {
    const stream = createGcsWriteStream({ bucket, name, apiEndpoint: endpoint, chunkSize });
    // Both settle: a failed upload rejects `finished`, and `writeTo` rejects once the stream is destroyed.
    await Promise.all([source.writeTo(stream), finished(stream)]);
    const stored = stream.object?.size;
    if (stored !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
};
