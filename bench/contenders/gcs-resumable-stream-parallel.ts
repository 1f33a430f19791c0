/**
 * This library with parallel composite uploads (issue 23): `createGcsWriteStream({ parallel, partSize })` cuts the
 * stream into parts, uploads up to `parallel` of them at once as temporary objects (each through its own resumable
 * session) and composes them into the object at the end. Only the scenarios that name it (10 and 11) run it;
 * everything else is as the single-session contender: default buffer, validation (CRC32C, checked against the
 * parts' combined CRC32C before `finish`) and pool.
 */
import { finished } from 'node:stream/promises';
import { createGcsWriteStream, type GcsWriteStreamOptions } from '../../src/index.js';
import type { Contender } from '../contender.js';

/** The options of issue 23's contract (declared here too, so that this file typechecks whatever the options type has). */
type ParallelOptions = GcsWriteStreamOptions & { parallel?: number; partSize?: number };

export const contender: Contender = {
  name: 'gcs-resumable-stream parallel',
  description:
    '`createGcsWriteStream({ bucket, name, apiEndpoint, chunkSize, parallel, partSize })`: parts uploaded as temporary objects, up to `parallel` at once, then composed; default bufferChunks, validation (crc32c) and pool',
  async run({ endpoint, bucket, name, size, chunkSize, parallel, partSize }, source) {
    // Without parts (only the harness's warm-up upload asks so) it is the single session.
    const options: ParallelOptions = { bucket, name, apiEndpoint: endpoint, chunkSize, parallel, partSize };
    const stream = createGcsWriteStream(options);
    // Both settle: a failed upload rejects `finished`, and `writeTo` rejects once the stream is destroyed.
    await Promise.all([source.writeTo(stream), finished(stream)]);
    const stored = stream.object?.size;
    if (stored !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
};
