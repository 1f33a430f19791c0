/**
 * The reader behind `gcs-stream cat`, in-process with fast retry settings against the local server: what the CLI
 * tests cannot reach in reasonable time with the default backoff (a spent budget, its reset on progress, stalls).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectReader, RANGE_BYTES } from '../src/cli/object-reader.js';
import type { RetryEvent, RetrySettings } from '../src/core/retry.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';
import { BUCKET, contentAt, FAST_RETRY, uniqueName } from './helpers.js';

let server: LocalGcs;
beforeAll(async () => {
  server = await startLocalGcs();
});
afterAll(() => server.close());

function readerOf(name: string, retry: Partial<RetrySettings> = {}) {
  const retries: RetryEvent[] = [];
  const reader = new ObjectReader(
    server.url,
    { bucket: BUCKET, name },
    { endpoint: server.url },
    { signal: new AbortController().signal, onRetry: (event) => retries.push(event), retry: { ...FAST_RETRY, multiplier: 2, ...retry } },
  );
  return { reader, retries };
}

/** Everything the reader gives, advancing as `cat` does. */
async function readAll(reader: ObjectReader): Promise<Buffer> {
  const { size } = await reader.state();
  const parts: Buffer[] = [];
  while (reader.printed < size) {
    const bytes = await reader.read();
    parts.push(bytes);
    reader.advance(bytes.length);
  }
  return Buffer.concat(parts);
}

describe('cat reader', () => {
  it('transient failures for the whole budget end with ERR_GCS_STREAM_RETRIES_EXHAUSTED and the last failure', async () => {
    const name = uniqueName('reader-exhausted');
    server.putObject(BUCKET, name, contentAt(0, 10));
    server.inject({ match: { kind: 'metadata', object: name, times: Infinity }, action: { type: 'status', status: 503 } });
    const { reader, retries } = readerOf(name);
    const error = await reader.state().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    server.clearFaults();
    expect(error).toMatchObject({ name: 'ObjectReadError', code: 'ERR_GCS_STREAM_RETRIES_EXHAUSTED', status: 503, bytesPrinted: 0 });
    expect((error as Error).message).toBe(
      `gave up reading gs://${BUCKET}/${name} after ${FAST_RETRY.maxAttempts} attempts without progress; last failure: ` +
        `reading the metadata of gs://${BUCKET}/${name} failed with HTTP 503 (a transient server condition): ` +
        'Injected fault: HTTP 503.; 0 bytes printed',
    );
    expect(retries.map((event) => event.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(server.requests.filter((record) => record.object === name).length).toBe(FAST_RETRY.maxAttempts);
  });

  it('the budget starts afresh once bytes were printed', async () => {
    const name = uniqueName('reader-progress');
    const data = contentAt(0, RANGE_BYTES + 10);
    server.putObject(BUCKET, name, data);
    // Two failures before each of the two ranges: five in all would spend a budget of 3 that never reset.
    for (const nth of [0, 1, 3, 4]) {
      server.inject({ match: { kind: 'media', object: name, nth }, action: { type: 'reset', afterBytes: 5 } });
    }
    const { reader, retries } = readerOf(name, { maxAttempts: 3 });
    expect((await readAll(reader)).equals(data)).toBe(true);
    expect(retries.map((event) => event.attempt)).toEqual([1, 2, 1, 2]);
  });

  it('a read that gets no answer is abandoned after the stall timeout and retried', async () => {
    const name = uniqueName('reader-stall');
    const data = contentAt(0, 1000);
    server.putObject(BUCKET, name, data);
    server.inject({ match: { kind: 'media', object: name }, action: { type: 'stall' } });
    const { reader, retries } = readerOf(name, { stallTimeoutMs: 300 });
    expect((await readAll(reader)).equals(data)).toBe(true);
    expect(retries.map((event) => event.error.code)).toEqual(['ERR_GCS_UPLOAD_REQUEST_TIMEOUT']);
    expect(server.requests.filter((record) => record.object === name).map((record) => record.status)).toEqual([200, 'stalled', 206]);
  });
});
