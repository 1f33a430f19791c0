import { constants as bufferConstants } from 'node:buffer';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkBuffer } from '../../src/chunk-buffer.js';
import { createGcsWriteStream, InvalidArgumentError, type GcsResumableWritable } from '../../src/index.js';
import { startTsx } from '../child.js';
import { BUCKET, contentAt, K256, MiB, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Issue 12, defect 4. Before the fix, the replay window was one allocation of chunkSize × bufferChunks, made by the
// first write: a 10-byte object through the default 8 MiB chunks allocated 16 MiB, and a window above
// buffer.constants.MAX_LENGTH passed validation, opened a session, and then threw a RangeError inside `_write`
// (uncaught: the process died, the session stayed open).

const ctx = useLocalGcs();
const GiB = 1024 * MiB;
const TMP = mkdtempSync(join(tmpdir(), 'gcs-window-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** bufferChunks that, with `chunkSize`, ask for one chunk more than the platform can allocate in one buffer. */
function oversizeBufferChunks(chunkSize: number): number {
  return Math.floor(bufferConstants.MAX_LENGTH / chunkSize) + 1;
}

/** Resolves once `stream` took `data` (its write callback fired: the bytes are in the window). */
function written(stream: GcsResumableWritable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (error) => (error ? reject(error) : resolve())));
}

describe('regression: the replay window is allocated as data arrives, and an impossible window is refused up front', () => {
  it('a 10-byte object through 8 MiB chunks allocates far less than the 16 MiB window', async () => {
    const name = uniqueName('tiny');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize: 8 * MiB }));
    const finished = new Promise<void>((resolve, reject) => stream.once('finish', resolve).once('error', reject));
    const before = process.memoryUsage().arrayBuffers;
    await written(stream, Buffer.from('0123456789'));
    // The window holds the bytes until the upload ends: what it allocated is still there to be counted.
    const grown = process.memoryUsage().arrayBuffers - before;
    stream.end();
    await finished;
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe('0123456789');
    expect(stream.object?.size).toBe('10');
    expect(grown).toBeLessThan(2 * MiB);
  });

  it('doubles from 256 KiB while the first chunk fills, and takes the whole window before any span goes out', () => {
    const chunkSize = 4 * K256;
    const window = new ChunkBuffer(chunkSize, 3);
    const data = contentAt(0, 3 * chunkSize);
    expect(window.bytesAllocated).toBe(0);
    expect(window.write(data.subarray(0, 10))).toBe(10);
    expect(window.bytesAllocated).toBe(K256);
    window.write(data.subarray(10, K256 + 1));
    expect(window.bytesAllocated).toBe(2 * K256);
    window.write(data.subarray(K256 + 1, chunkSize));
    expect(window.bytesAllocated).toBe(chunkSize);
    expect(window.nextSpan()).toBeUndefined(); // a full chunk with nothing after it may be the last: held
    window.write(data.subarray(chunkSize, chunkSize + 1));
    expect(window.bytesAllocated).toBe(3 * chunkSize);
    // The first chunk goes out (in flight) while the writer fills the rest: no growth is left to disturb it.
    const inFlight = window.nextSpan()!;
    expect(inFlight).toMatchObject({ offset: 0, final: false });
    expect(window.write(data.subarray(chunkSize + 1))).toBe(2 * chunkSize - 1);
    expect(window.bytesAllocated).toBe(3 * chunkSize);
    expect(inFlight.body.equals(data.subarray(0, chunkSize))).toBe(true);
    window.end();
    // The slabs follow each other in the one allocation: one contiguous whole-window body, a view, not a copy.
    const whole = window.nextSpan(true)!;
    expect(whole).toMatchObject({ offset: 0, final: true });
    expect(whole.body.equals(data)).toBe(true);
    expect(whole.body.buffer).toBe(inFlight.body.buffer);
  });

  it('a window larger than the platform can allocate throws InvalidArgumentError synchronously, before any request', async () => {
    const name = uniqueName('oversize');
    const chunkSize = GiB;
    const bufferChunks = oversizeBufferChunks(chunkSize);
    let thrown: unknown;
    let stream: GcsResumableWritable | undefined;
    try {
      stream = createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize, bufferChunks }));
    } catch (error) {
      thrown = error;
    }
    stream?.destroy(); // only before the fix: it opened a session
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    const message = (thrown as Error).message;
    expect(message).toContain(String(chunkSize * bufferChunks)); // the product
    expect(message).toContain(String(bufferConstants.MAX_LENGTH)); // the limit
    expect(message).toMatch(/lower chunkSize or bufferChunks/); // what to do
    // Another upload's round trips go after anything the refused stream could have sent: the server saw nothing of it.
    const other = uniqueName('after-oversize');
    await pipeline(Readable.from([Buffer.from('x')]), createGcsWriteStream(streamOptions(ctx.server, other)));
    expect(ctx.server.getObject(BUCKET, other)?.data.toString()).toBe('x');
    expect(ctx.server.requests.filter((request) => request.object === name)).toEqual([]);
  });

  it('gcs-stream cp with such a window exits with code 2 and sends nothing', async () => {
    const name = uniqueName('cli-oversize');
    const file = join(TMP, 'ten.bin');
    writeFileSync(file, '0123456789');
    const chunks = String(oversizeBufferChunks(GiB));
    const cli = startTsx(
      join(import.meta.dirname, '..', '..', 'src', 'cli.ts'),
      ['cp', file, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-size', '1GiB', '--buffer-chunks', chunks, '--quiet'],
      { cwd: join(import.meta.dirname, '..', '..') },
    );
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect({ code: exit.code, stderr: exit.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining('(ERR_GCS_UPLOAD_INVALID_ARGUMENT)') as unknown });
    expect(exit.stderr).toMatch(/lower chunkSize or bufferChunks/);
    expect(ctx.server.requests.filter((request) => request.object === name)).toEqual([]);
  });
});
