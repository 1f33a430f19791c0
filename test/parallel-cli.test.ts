import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTsx } from './child.js';
import { BUCKET, K256, sha256, temporaryParts, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-stream-parallel-cli-'));
const DATA = randomBytes(4 * K256 + 12_345);
const FILE = join(TMP, 'data.bin');
writeFileSync(FILE, DATA);

afterAll(() => rmSync(TMP, { recursive: true, force: true }));

describe('gcs-stream cp --parallel', () => {
  it('uploads a file in parts of --part-size and composes them', async () => {
    const name = uniqueName('cli-parallel');
    const cli = startTsx(
      CLI,
      ['cp', FILE, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--parallel', '3', '--part-size', '256KiB', '-q'],
      {
        cwd: ROOT,
        env: {},
      },
    );
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    const stored = ctx.server.getObject(BUCKET, name)!;
    expect(sha256(stored.data)).toBe(sha256(DATA));
    expect((stored.resource as unknown as { componentCount?: number }).componentCount).toBe(5);
    expect(temporaryParts(ctx.server)).toEqual([]);
  });

  it('uploads standard input in parts (the stdin default of --max-uncommitted does not apply)', async () => {
    const name = uniqueName('cli-parallel-stdin');
    const cli = startTsx(
      CLI,
      ['cp', '-', `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--parallel', '2', '--part-size', '256K', '-q'],
      {
        cwd: ROOT,
        env: {},
      },
    );
    cli.child.stdin.end(DATA);
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(sha256(ctx.server.getObject(BUCKET, name)!.data)).toBe(sha256(DATA));
  });

  it('refuses --max-uncommitted with --parallel as a usage error, before anything is sent', async () => {
    const name = uniqueName('cli-parallel-refused');
    const cli = startTsx(
      CLI,
      ['cp', FILE, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--parallel', '2', '--max-uncommitted', '1s'],
      {
        cwd: ROOT,
        env: {},
      },
    );
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/maxUncommittedMs/);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });
});
