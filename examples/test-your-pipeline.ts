/**
 * Testing your own upload code with `gcs-resumable-stream/testing`: a real GCS-compatible server on 127.0.0.1, no
 * credentials, and faults injected exactly where you want them. Uses node:test; run it like any test file:
 *
 *   node --import tsx --test examples/test-your-pipeline.ts
 */
/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits the tests it registers */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { createGzip, gunzipSync } from 'node:zlib';
// In your project: from 'gcs-resumable-stream' and 'gcs-resumable-stream/testing'.
import { createGcsWriteStream, PermissionDeniedError, type GcsWriteStreamOptions } from '../src/index.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';

/** The code under test: gzips lines into an object. It takes stream options, so tests can point it anywhere. */
export async function archiveLines(lines: Iterable<string> | AsyncIterable<string>, options: GcsWriteStreamOptions): Promise<string> {
  const upload = createGcsWriteStream({ contentType: 'application/gzip', ...options });
  await pipeline(Readable.from(lines), createGzip(), upload);
  return upload.object!.generation!;
}

let server: LocalGcs;
before(async () => (server = await startLocalGcs()));
after(() => server.close());
// Small chunks so that a small archive spans several requests; retries in milliseconds so that tests are fast.
const options = (name: string): GcsWriteStreamOptions => ({
  bucket: 'test-bucket',
  name,
  apiEndpoint: server.url,
  chunkSize: 256 * 1024,
  retry: { initialDelayMs: 1, maxDelayMs: 10 },
});

test('the archive is intact despite a connection reset and a 503', async () => {
  server.inject({ match: { object: 'archive', kind: 'chunk', offset: 0 }, action: { type: 'reset' } });
  server.inject({ match: { object: 'archive', kind: 'chunk', offset: 256 * 1024 }, action: { type: 'status', status: 503 } });
  const lines = Array.from({ length: 20_000 }, () => `${randomBytes(20).toString('hex')}\n`); // ~450 KiB gzipped
  const generation = await archiveLines(lines, options('archive'));
  const stored = server.getObject('test-bucket', 'archive')!;
  assert.equal(gunzipSync(stored.data).toString(), lines.join(''));
  assert.equal(stored.resource.generation, generation);
  assert.equal(server.faultsInjected, 2);
});

test('a refused upload rejects with a typed error and leaves no object', async () => {
  server.inject({ match: { object: 'denied', kind: 'open' }, action: { type: 'status', status: 403 } });
  await assert.rejects(archiveLines(['a\n'], options('denied')), PermissionDeniedError);
  assert.equal(server.getObject('test-bucket', 'denied'), undefined);
});

test('a source that fails midway leaves no truncated archive', async () => {
  function* lines(): Generator<string> {
    yield 'first line\n';
    throw new Error('the database went away');
  }
  await assert.rejects(archiveLines(lines(), options('broken')), /the database went away/);
  assert.equal(server.getObject('test-bucket', 'broken'), undefined);
});
