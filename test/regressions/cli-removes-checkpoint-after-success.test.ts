import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTsx, type Exit } from '../child.js';
import { BUCKET, K256, uniqueName, useLocalGcs } from '../helpers.js';

// Issue 12, defect 2 (its CLI part). Before the fix, `gcs-stream cp --checkpoint FILE` left FILE behind after a
// successful upload: it still named the finished session, so running the same command again with `--resume FILE`
// (as a retry loop does) went back to an upload that had already completed instead of being told there was nothing
// to resume.

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..', '..');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-cli-checkpoint-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const DATA = randomBytes(2 * K256 + 123);
const FILE = join(TMP, 'data.bin');
writeFileSync(FILE, DATA);

function runCli(args: string[]): Promise<Exit> {
  const cli = startTsx(join(ROOT, 'src', 'cli.ts'), args, { cwd: ROOT });
  cli.child.stdin.end();
  return cli.exited;
}

describe('regression: gcs-stream removes its checkpoint file once the upload succeeded', () => {
  it('cp --checkpoint FILE: FILE is gone after success, so --resume FILE has nothing to resume', async () => {
    const name = uniqueName('checkpoint-removed');
    const checkpointFile = join(TMP, 'upload.ckpt');
    const args = ['cp', FILE, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-size', '256KiB', '--quiet'];
    const exit = await runCli([...args, '--checkpoint', checkpointFile]);
    expect(exit.code, exit.stderr).toBe(0);
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(DATA)).toBe(true);
    expect(existsSync(checkpointFile)).toBe(false);
    expect(readdirSync(TMP).sort()).toEqual(['data.bin']); // no temporary files either

    const again = await runCli([...args, '--resume', checkpointFile]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/cannot read the checkpoint file \(ENOENT\)/);
    expect(ctx.server.listSessions().filter((session) => session.name === name)).toHaveLength(1);
  });
});
