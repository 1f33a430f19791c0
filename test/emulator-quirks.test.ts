import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream, ProtocolError, type GcsResumableWritable } from '../src/index.js';
import { startQuirkyGcs, type QuirkyGcs } from './fixtures/quirky-gcs.js';
import { expectedDigest, FAST_RETRY, K256, KiB, sha256, source, uniqueName } from './helpers.js';

// Against a server with fake-gcs-server's semantics (see fixtures/quirky-gcs.ts): a status query finalizes the
// object, a finalized session is forgotten, and DELETE always answers 499. GCS never does any of this, but users
// test against such emulators, and the promises must hold there too: no truncated object stays behind, a completed
// upload is recognized as such, and no message claims what did not happen.

let server: QuirkyGcs;
beforeAll(async () => {
  server = await startQuirkyGcs();
});
afterAll(async () => {
  await server.close();
});

const SIZE = 3 * K256 + 10; // PUT 1-3: full chunks; PUT 4: the final 10 bytes

async function send(name: string): Promise<{ stream: GcsResumableWritable; error: unknown }> {
  const stream = createGcsWriteStream({
    bucket: 'b',
    name,
    apiEndpoint: server.url,
    chunkSize: K256,
    adaptiveRequests: false,
    retry: FAST_RETRY,
  });
  try {
    await pipeline(source(SIZE, 64 * KiB), stream);
    return { stream, error: undefined };
  } catch (error) {
    return { stream, error };
  }
}

describe('an emulator with fake-gcs-server semantics', () => {
  it('takes a plain upload (bucket "b")', async () => {
    const name = uniqueName('quirky-plain');
    const { error, stream } = await send(name);
    expect(error).toBeUndefined();
    const stored = server.objects.get(`b/${name}`);
    expect(stored && sha256(stored.data)).toBe(expectedDigest(SIZE));
    expect(stream.object?.generation).toBe(stored?.generation);
  });

  it('finalizes a truncated object on the status query after a reset: that generation is deleted, the error says so', async () => {
    const name = uniqueName('quirky-premature');
    server.fault({ put: server.putsSeen + 2, action: 'reset-mid-body' }); // the second chunk
    const { error } = await send(name);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toMatch(/finalized the object at 262144 bytes before the client sent its total size/);
    expect((error as Error).message).toMatch(/that truncated generation was deleted/);
    expect((error as Error).message).toMatch(/the corrupt generation was deleted/);
    expect(server.objects.has(`b/${name}`)).toBe(false);
  });

  it('loses the answer to the final request and forgets the session: the upload is found complete and finishes', async () => {
    const name = uniqueName('quirky-lost-final');
    server.fault({ put: server.putsSeen + 4, action: 'drop-answer-after-commit' }); // the final request
    const { error, stream } = await send(name);
    expect(error).toBeUndefined();
    const stored = server.objects.get(`b/${name}`);
    expect(stored && sha256(stored.data)).toBe(expectedDigest(SIZE));
    expect(stream.object?.size).toBe(String(SIZE));
  });
});
