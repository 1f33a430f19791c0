/**
 * `@google-cloud/storage` (the incumbent), as a user would call it against an emulator: `file.createWriteStream()`
 * with a chunked resumable upload and its default validation (it computes a CRC32C of the data and compares it
 * with the object's after the upload).
 *
 * With a custom `apiEndpoint` it sends no credentials (`useAuthWithCustomEndpoint` defaults to false): its
 * resumable uploader swaps its auth client for plain gaxios. The run's request log (the PUTs column of the report)
 * shows it really uploads `chunkSize` bytes per PUT. Without a `chunkSize` (its default) it streams the whole object
 * in one PUT of unknown length, keeping only the last write for a retry.
 *
 * Many streams in one process share one `Storage`, as a user's program would; it has no shared memory ceiling.
 *
 * It reports no commit to the harness (the data at risk is n/a): its `progress` events carry `bytesWritten`, the
 * bytes it has handed to the request body, not what the server confirmed, and it has no `maxUncommittedMs`. With
 * no `chunkSize` its one PUT is confirmed only by the final response, when the whole object is.
 */
import { finished } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import type { Contender } from '../contender.js';

/** One client per endpoint, shared by the streams of a process. */
const clients = new Map<string, Storage>();

function storageFor(apiEndpoint: string): Storage {
  let storage = clients.get(apiEndpoint);
  if (storage === undefined) {
    storage = new Storage({ apiEndpoint, projectId: 'bench' });
    clients.set(apiEndpoint, storage);
  }
  return storage;
}

export const contender: Contender = {
  name: '@google-cloud/storage',
  description:
    "`new Storage({ apiEndpoint, projectId: 'bench' })` (one per process), `file.createWriteStream({ resumable: true, chunkSize })`: default validation (crc32c) and retries; no `chunkSize` (one streaming PUT) where the scenario leaves it to the contender",
  async run({ endpoint, bucket, name, size, chunkSize }, source) {
    const file = storageFor(endpoint).bucket(bucket).file(name);
    const stream = file.createWriteStream({ resumable: true, chunkSize, contentType: 'application/octet-stream' });
    await Promise.all([source.writeTo(stream), finished(stream)]);
    const stored: unknown = file.metadata.size;
    if (String(stored) !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
};
