import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../src/index.js';
import { startTsx, until, type RunningChild } from './child.js';
import { BUCKET, measurePeakMemory, MiB, source } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// The benchmark's server, in a process of its own (keeping only sizes and checksums): what this process measures is
// the client alone, not the server's buffers of the same bytes.
let server: RunningChild;
let url: string;
beforeAll(async () => {
  server = startTsx(join(ROOT, 'bench', 'server.ts'), [], { cwd: ROOT });
  await until(() => server.stdout().includes('\n'), 'the server URL', [[server.child.stdout, 'data']], () => server.stderr());
  url = server.stdout().split('\n')[0]!.trim();
});
afterAll(async () => {
  server.child.stdin.end(); // the server exits when its stdin closes
  await server.exited;
});

describe('memory bound', () => {
  it('256 MiB through 8 MiB chunks grows memory by far less than the object size', async () => {
    const size = 256 * MiB;
    const chunkSize = 8 * MiB;
    const stream = createGcsWriteStream({ bucket: BUCKET, name: 'memory-bound', apiEndpoint: url, chunkSize });
    const { rssGrowth, bufferGrowth } = await measurePeakMemory(() => pipeline(source(size, 64 * 1024), stream));
    expect(stream.object?.size).toBe(String(size));
    console.log(
      `memory bound: object ${size / MiB} MiB, chunk ${chunkSize / MiB} MiB, peak RSS growth ${(rssGrowth / MiB).toFixed(1)} MiB, ` +
        `peak ArrayBuffer growth ${(bufferGrowth / MiB).toFixed(1)} MiB`,
    );
    // Two chunk buffers (16 MiB) plus the queue, transport buffers and the source's garbage; nowhere near the 256 MiB
    // object.
    expect(bufferGrowth).toBeLessThan(64 * MiB);
    expect(rssGrowth).toBeLessThan(96 * MiB);
  });
});
