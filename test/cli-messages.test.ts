import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTsx, type Exit } from './child.js';
import { BUCKET, useLocalGcs } from './helpers.js';

// Issue 22, item 6: what a new user meets first. The CLI never printed an error's cause, told CLI users to set the
// library's `authClient` option, called a bucket URL given to `cat` "not a destination", and suggested an
// `--interval off` that it then refused.

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-cli-messages-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const FILE = join(TMP, 'data.bin');
writeFileSync(FILE, 'some bytes');

/**
 * Each test runs several CLI processes, each compiling TypeScript (tsx) first: on a loaded 2-core machine that alone
 * can take tens of seconds, so the guards against a hang are generous (nothing here waits on a timer).
 */
const CHILDREN_TIMEOUT_MS = 180_000;

function run(args: string[], env: Record<string, string> = {}): Promise<Exit> {
  const cli = startTsx(CLI, args, { cwd: ROOT, env });
  cli.child.stdin.end();
  return cli.exited;
}

describe('gcs-stream messages', () => {
  it(
    'credentials that cannot be obtained: what a CLI user can do, and the cause (code and message)',
    async () => {
      // A key file that does not exist fails before any request: nothing leaves the machine.
      const env = { GOOGLE_APPLICATION_CREDENTIALS: join(TMP, 'no-such-key.json'), HOME: TMP };
      const google = ['--endpoint', 'https://storage.googleapis.com'];
      const [upload, read] = await Promise.all([
        run(['cp', FILE, 'gs://some-bucket/o', ...google], env),
        run(['cat', 'gs://some-bucket/o', ...google], env),
      ]);
      for (const exit of [upload, read]) {
        expect(exit.code, exit.stderr).toBe(1);
        expect(exit.stderr).not.toMatch(/authClient/);
        expect(exit.stderr).toContain('gcloud auth application-default login');
        expect(exit.stderr).toContain('GOOGLE_APPLICATION_CREDENTIALS');
        expect(exit.stderr).toContain('STORAGE_EMULATOR_HOST');
      }
      expect(upload.stderr).toMatch(
        /^gcs-stream: error: .*credentials could not be obtained \(ENOENT\).* \(ERR_GCS_UPLOAD_UNAUTHENTICATED\)$/m,
      );
      // The cause, on its own line: its message (which names the missing file) and its code.
      expect(upload.stderr).toMatch(/^gcs-stream: {3}cause: .*no-such-key\.json.* \(ENOENT\)$/m);
    },
    CHILDREN_TIMEOUT_MS,
  );

  it(
    'cat of a bucket says it names a bucket; --interval hints only at values it accepts',
    async () => {
      const endpoint = ['--endpoint', ctx.server.url];
      const [bucket, badInterval, offInterval, good] = await Promise.all([
        run(['cat', `gs://${BUCKET}`, ...endpoint]),
        run(['cat', '--follow', '--interval', 'soon', `gs://${BUCKET}/o`, ...endpoint]),
        run(['cat', '--follow', '--interval', 'off', `gs://${BUCKET}/o`, ...endpoint]),
        run(['cat', '--follow', '--json', '--interval', '1m', `gs://${BUCKET}/missing`, ...endpoint]),
      ]);
      expect(bucket.code).toBe(2);
      expect(bucket.stderr).toContain(`"gs://${BUCKET}" names the bucket ${BUCKET}, not an object: use gs://BUCKET/OBJECT`);
      expect(bucket.stderr).not.toContain('destination');
      expect(badInterval.code).toBe(2);
      expect(badInterval.stderr).toContain('"soon" is not a duration: use e.g. 200ms, 1s or 1m');
      expect(badInterval.stderr).not.toMatch(/\boff\b/);
      expect(offInterval.code).toBe(2);
      expect(offInterval.stderr).toContain('"off" is not accepted here');
      // Every example the hint gives is accepted (1m stands for them: the object is missing, so it exits at once).
      expect(good.stderr).toContain('does not exist (ERR_GCS_STREAM_NOT_FOUND)');
    },
    CHILDREN_TIMEOUT_MS,
  );
});
