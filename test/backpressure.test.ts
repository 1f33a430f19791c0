import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../src/index.js';
import { contentAt, expectedDigest, K256, KiB, MiB, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

describe('backpressure: a queue of 16 KiB in front of the window', () => {
  it('a 64 KiB write returns true while the window has room: a piping source does not pause on every write', async () => {
    const stream = createGcsWriteStream(streamOptions(ctx.server, uniqueName('hwm'), { chunkSize: 8 * MiB }));
    expect(stream.writableHighWaterMark).toBe(16 * KiB);
    // Node completes a stream's construction on the next tick and queues the writes made before (as any source that
    // reads first would not); there is no event for it.
    await new Promise(setImmediate);
    // Writes four times the queue's size, each copied into the window before write() returns.
    for (let i = 0; i < 4; i++) expect(stream.write(contentAt(i * 64 * KiB, 64 * KiB))).toBe(true);
    stream.destroy();
  });

  it('once the window is full, writes queue up to the highWaterMark, then write() says wait; every byte arrives', async () => {
    const name = uniqueName('hwm-full');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize: K256, bufferChunks: 2 }));
    expect(stream.writableHighWaterMark).toBe(16 * KiB);
    await new Promise(setImmediate); // construction, as above
    const piece = 64 * KiB;
    let written = 0;
    // Synchronously, so nothing can be sent meanwhile: the window (512 KiB) fills, then the queue.
    while (stream.write(contentAt(written, piece))) written += piece;
    written += piece;
    // The window's first block takes 256 KiB; the write that does not fit waits, and says so: nothing queues behind it.
    expect(written).toBeLessThanOrEqual(2 * K256 + piece);
    expect(stream.writableLength).toBeLessThanOrEqual(piece);
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(written));
  });
});
