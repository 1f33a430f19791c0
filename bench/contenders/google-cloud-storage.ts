/**
 * `@google-cloud/storage` (the incumbent), as a user would call it against an emulator: `file.createWriteStream()`
 * with a chunked resumable upload and its default validation (it computes a CRC32C of the data and compares it
 * with the object's after the upload).
 *
 * With a custom `apiEndpoint` it sends no credentials (`useAuthWithCustomEndpoint` defaults to false): its
 * resumable uploader swaps its auth client for plain gaxios. The run's request log (the PUTs column of the report)
 * shows it really uploads `chunkSize` bytes per PUT.
 */
import { finished } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import type { Contender } from '../contender.js';

export const contender: Contender = {
  name: '@google-cloud/storage',
  description:
    "`new Storage({ apiEndpoint, projectId: 'bench' })`, `file.createWriteStream({ resumable: true, chunkSize })`: default validation (crc32c) and retries",
  async run({ endpoint, bucket, name, size, chunkSize }, source) {
    const storage = new Storage({ apiEndpoint: endpoint, projectId: 'bench' });
    const file = storage.bucket(bucket).file(name);
    const stream = file.createWriteStream({ resumable: true, chunkSize, contentType: 'application/octet-stream' });
    await Promise.all([source.writeTo(stream), finished(stream)]);
    const stored: unknown = file.metadata.size;
    if (String(stored) !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
};
