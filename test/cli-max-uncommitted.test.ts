/**
 * `gcs-stream cp - --max-uncommitted`: piped output (a build log) gets its full blocks committed while the pipe is
 * still open, and the progress shows committed against accepted. Durations parse as documented.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/cli/parse-size.js';
import { startTsx, until } from './child.js';
import { BUCKET, contentAt, expectedDigest, K256, KiB, storedDigest, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');

describe('--max-uncommitted', () => {
  it('parses 500ms, 10s, 2m, 1.5s and off; refuses anything else', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('off')).toBe(Number.POSITIVE_INFINITY);
    for (const bad of ['', '10', '0s', '-1s', '1h', 'soon']) expect(() => parseDuration(bad)).toThrow(/is not a duration/);
  });

  it('a slow pipe: full blocks are committed while it stays open, the progress says committed and accepted', async () => {
    const name = uniqueName('cli-log');
    const cli = startTsx(
      join(ROOT, 'src', 'cli.ts'),
      ['cp', '-', `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-size', '8MiB', '--max-uncommitted', '50ms'],
      { cwd: ROOT, env: { CI: '1' } },
    );
    const first = K256 + 100 * KiB;
    cli.child.stdin.write(contentAt(0, first));
    const session = () => ctx.server.listSessions().find((s) => s.name === name);
    await until(
      () => (session()?.bytesCommitted ?? 0) >= K256,
      'the first block on the server',
      [[ctx.server.activity, 'change']],
      () => cli.stderr(),
    );
    await until(
      () => /256\.0 KiB committed, 356\.0 KiB accepted/.test(cli.stderr()),
      'a progress line with both counts',
      [[cli.child.stderr, 'data']],
      () => cli.stderr(),
    );
    cli.child.stdin.end(contentAt(first, 10));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(first + 10));
  });

  it('a bad value exits 2 before anything is sent', async () => {
    const name = uniqueName('cli-bad-bound');
    const cli = startTsx(
      join(ROOT, 'src', 'cli.ts'),
      ['cp', '-', `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--max-uncommitted', 'soon'],
      { cwd: ROOT },
    );
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/is not a duration/);
    expect(ctx.server.requests.filter((r) => r.object === name)).toEqual([]);
  });
});
