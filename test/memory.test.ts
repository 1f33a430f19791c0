import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTsx, until, type RunningChild } from './child.js';
import type { MemoryReport } from './fixtures/memory-client.js';
import { MiB } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');

// The benchmark's server, in a process of its own (keeping only sizes and checksums), and the client in another
// (test/fixtures/memory-client.ts): what is measured is the client alone, not the server's copies of the same bytes
// nor the test runner.
let server: RunningChild;
let url: string;
beforeAll(async () => {
  server = startTsx(join(ROOT, 'bench', 'server.ts'), [], { cwd: ROOT });
  await until(
    () => server.stdout().includes('\n'),
    'the server URL',
    [[server.child.stdout, 'data']],
    () => server.stderr(),
  );
  url = server.stdout().split('\n')[0]!.trim();
});
afterAll(async () => {
  server.child.stdin.end(); // the server exits when its stdin closes
  await server.exited;
});

describe('memory bound', () => {
  it('256 MiB through 8 MiB chunks retains the pool blocks of its window, not the object', async () => {
    const size = 256 * MiB;
    const chunkSize = 8 * MiB;
    // Two chunks, a link-bound stream's window: this test is about what is retained. (The sampler's full collection
    // every 5 ms slows answers enough that the pacer may take them for a long round trip and grow the window towards
    // the default cap, 16 chunks, as it should for one.)
    const bufferChunks = 2;
    const client = startTsx(
      join(ROOT, 'test', 'fixtures', 'memory-client.ts'),
      ['--endpoint', url, '--size', String(size), '--chunk-size', String(chunkSize), '--buffer-chunks', String(bufferChunks)],
      {
        cwd: ROOT,
        nodeArgs: ['--expose-gc', '--no-concurrent-array-buffer-sweeping'],
      },
    );
    client.child.stdin.end();
    const exit = await client.exited;
    expect(exit.code, exit.stderr).toBe(0);
    const report = JSON.parse(exit.stdout) as MemoryReport;
    expect(report.objectSize).toBe(String(size));
    console.log(
      `memory bound: object ${size / MiB} MiB, chunk ${chunkSize / MiB} MiB, ${report.samples} samples after a full GC: ` +
        `retained ArrayBuffers +${(report.retainedBufferGrowth / MiB).toFixed(1)} MiB, heap +${(report.retainedHeapGrowth / MiB).toFixed(1)} MiB; ` +
        `peak RSS growth ${(report.peakRssGrowth / MiB).toFixed(1)} MiB`,
    );
    // Enough samples to have seen the upload at every stage (it takes 32 chunk round trips).
    expect(report.samples).toBeGreaterThanOrEqual(10);
    // The window's blocks come from the pool, which held at most what the window was allowed, within the cap; a
    // fast stream's window reaches at least two chunks.
    const cap = chunkSize * bufferChunks;
    expect(report.peakTargetBytes).toBeGreaterThanOrEqual(2 * chunkSize);
    expect(report.poolPeakBytes).toBeLessThanOrEqual(Math.min(cap, report.peakTargetBytes));
    expect(report.retainedBufferGrowth).toBeGreaterThanOrEqual(2 * chunkSize);
    // The pool's blocks, the 16 KiB queue, the source's write in hand and response bodies (about 0.4 MiB in all):
    // a buffer of the object retained anywhere else would show here.
    expect(report.retainedBufferGrowth).toBeLessThan(report.poolPeakBytes + 4 * MiB);
    expect(report.retainedBufferGrowth).toBeLessThan(size / 4);
    expect(report.retainedHeapGrowth).toBeLessThan(8 * MiB);
    // What the OS sees, garbage between two collections included.
    expect(report.peakRssGrowth).toBeLessThan(96 * MiB);
  });
});
