import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../../src/index.js';
import { startTsx } from '../child.js';
import { BUCKET, MiB, streamOptions, uniqueName, useLocalGcs, written } from '../helpers.js';

// Issue 12, defect 4. Before the fix, the replay window was one allocation of chunkSize × bufferChunks, made by the
// first write: a 10-byte object through the default 8 MiB chunks allocated 16 MiB, and a window above
// buffer.constants.MAX_LENGTH passed validation, opened a session, and then threw a RangeError inside `_write`
// (uncaught: the process died, the session stayed open). The window is now made of 256 KiB blocks from a pool
// (issue 14), taken as data arrives: no single allocation can be too large.

const ctx = useLocalGcs();
const GiB = 1024 * MiB;
const TMP = mkdtempSync(join(tmpdir(), 'gcs-window-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** Resolves once `stream` took `data` (its write callback fired: the bytes are in the window). */

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

  it('a window larger than one Buffer can be is fine: it is made of blocks, taken as data arrives', async () => {
    const name = uniqueName('huge-window');
    // 5 GiB: above buffer.constants.MAX_LENGTH on Node 20, where one allocation of it would throw a RangeError.
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize: GiB, bufferChunks: 5 }));
    const before = process.memoryUsage().arrayBuffers;
    await written(stream, Buffer.from('0123456789'));
    const grown = process.memoryUsage().arrayBuffers - before;
    stream.end();
    await finished(stream);
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe('0123456789');
    expect(grown).toBeLessThan(2 * MiB);
  });

  it('gcs-stream cp with such a window uploads the file', async () => {
    const name = uniqueName('cli-huge-window');
    const file = join(TMP, 'ten.bin');
    writeFileSync(file, '0123456789');
    const cli = startTsx(
      join(import.meta.dirname, '..', '..', 'src', 'cli.ts'),
      ['cp', file, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-size', '1GiB', '--buffer-chunks', '5', '--quiet'],
      { cwd: join(import.meta.dirname, '..', '..') },
    );
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect({ code: exit.code, stderr: exit.stderr }).toMatchObject({ code: 0 });
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe('0123456789');
  });
});
