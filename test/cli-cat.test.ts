/**
 * `gcs-stream cat [--follow] gs://BUCKET/OBJECT`: prints an object; with --follow, prints an appendable object's
 * bytes as they are persisted, and exits once it is finalized with every byte printed exactly once.
 */
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsAppendStream, createGcsWriteStream } from '../src/index.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';
import { startTsx, until } from './child.js';
import { BUCKET, FAST_RETRY, uniqueName } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
let server: LocalGcs;

beforeAll(async () => {
  server = await startLocalGcs({ grpc: true });
});
afterAll(() => server.close());

function catCli(args: string[]) {
  return startTsx(CLI, ['cat', ...args, '--endpoint', server.url], { cwd: ROOT });
}

/** Log lines, ASCII so that the child's stdout, read as text, compares byte for byte. */
function lines(from: number, count: number): string {
  let text = '';
  for (let i = from; i < from + count; i++) text += `line ${i}: ${'x'.repeat(i % 50)}\n`;
  return text;
}

describe('cat', () => {
  it('--follow prints every flushed piece while the object is written, and exits 0 once it is finalized', async () => {
    const name = uniqueName('cat-follow');
    const stream = createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: server.grpc.address, retry: FAST_RETRY });
    let written = lines(0, 10);
    stream.write(written);
    await stream.flush();
    const cli = catCli(['--follow', '--interval', '20ms', `gs://${BUCKET}/${name}`]);
    for (let piece = 1; piece <= 4; piece++) {
      await until(
        () => cli.stdout() === written,
        `the first ${written.length} bytes on stdout`,
        [[cli.child.stdout, 'data']],
        () => cli.stderr(),
      );
      const more = lines(piece * 10, 10 + piece * 40);
      stream.write(more);
      written += more;
      await stream.flush();
    }
    await until(
      () => cli.stdout() === written,
      'every flushed byte on stdout',
      [[cli.child.stdout, 'data']],
      () => cli.stderr(),
    );
    expect(cli.child.exitCode).toBe(null); // still following: the object is not finalized
    const last = lines(1000, 3);
    stream.end(last);
    written += last;
    await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toBe(written);
    expect(server.getObject(BUCKET, name)?.data.toString()).toBe(written);
  });

  it('prints a finalized object uploaded through the JSON API, larger than one ranged read', async () => {
    const name = uniqueName('cat-json');
    const text = lines(0, 60_000); // ~3.5 MiB: two ranged reads
    await pipeline(Readable.from([Buffer.from(text)]), createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: server.url }));
    for (const args of [[`gs://${BUCKET}/${name}`], ['--follow', '--interval', '20ms', `gs://${BUCKET}/${name}`]]) {
      const exit = await catCli(args).exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout.length).toBe(text.length);
      expect(exit.stdout === text).toBe(true);
    }
  });

  it('a missing object exits 1 with a clear message; a bad URL exits 2', async () => {
    const missing = await catCli(['--follow', `gs://${BUCKET}/${uniqueName('cat-missing')}`]).exited;
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/gs:\/\/test-bucket\/.*cat-missing.* does not exist \(ERR_GCS_STREAM_NOT_FOUND\)/);
    expect(missing.stdout).toBe('');
    const usage = await catCli(['not-a-url']).exited;
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/is not a destination/);
  });
});
