import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { UploadCheckpoint } from '../src/index.js';
import { startTsx, until, type Exit, type RunningChild } from './child.js';
import { BUCKET, K256, uniqueName, useLocalGcs } from './helpers.js';

// Issue 22, item 6: Ctrl-C with --checkpoint used to cancel the session, so resuming from the checkpoint it left
// failed with 410; and Ctrl-C while the session was being opened said "the object may or may not exist" although
// nothing had been sent.

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-cli-interrupt-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const DATA = randomBytes(4 * K256 + 4321);
const FILE = join(TMP, 'data.bin');
writeFileSync(FILE, DATA);

/**
 * Each test runs several CLI processes, each compiling TypeScript (tsx) first: on a loaded 2-core machine that alone
 * can take tens of seconds, so the guards against a hang are generous (nothing here waits on a timer).
 */
const CHILDREN_TIMEOUT_MS = 180_000;
/** How long an awaited event may take to come (see CHILDREN_TIMEOUT_MS). */
const EVENT_TIMEOUT_MS = 120_000;

function startCli(args: string[]): RunningChild {
  return startTsx(CLI, args, { cwd: ROOT });
}

function readCheckpoint(path: string): UploadCheckpoint | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as UploadCheckpoint;
  } catch {
    return undefined;
  }
}

/** Resolves once the checkpoint file says `condition` (woken by changes in its directory, never by a timer). */
async function awaitCheckpoint(cli: RunningChild, file: string, condition: (c: UploadCheckpoint) => boolean): Promise<void> {
  const watcher = watch(TMP);
  try {
    await until(
      () => {
        const checkpoint = readCheckpoint(file);
        return checkpoint !== undefined && condition(checkpoint);
      },
      'the checkpoint',
      [
        [watcher, 'change'],
        [ctx.server.activity, 'change'],
      ],
      () => ({ checkpoint: readCheckpoint(file), stderr: cli.stderr() }),
      EVENT_TIMEOUT_MS,
    );
  } finally {
    watcher.close();
  }
}

/** The arguments of the `gcs-stream ...` command in `line` (words quoted as the CLI quotes them: '...'). */
function commandArgs(line: string): string[] {
  const command = line.slice(line.indexOf('gcs-stream cp '));
  const words = [...command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] ?? m[2]!).replaceAll("'\\''", "'"));
  expect(words[0]).toBe('gcs-stream');
  return words.slice(1);
}

/** Runs the printed resume command with `input` on stdin. */
function runResume(stderr: string, input?: Buffer): Promise<Exit> {
  const line = stderr.split('\n').find((l) => l.includes('resume with'));
  expect(line, stderr).toBeDefined();
  const cli = startCli(commandArgs(line!));
  cli.child.stdin.end(input);
  return cli.exited;
}

describe('gcs-stream cp: interrupts', () => {
  it(
    'SIGINT with --checkpoint keeps the session, commits what was read, and prints the command that resumes it',
    async () => {
      const name = uniqueName('cli-sigint-checkpoint');
      const file = join(TMP, 'sigint.ckpt');
      const args = ['cp', '-', `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-size', '256KiB', '--checkpoint', file];
      const cli = startCli(args);
      // A slow source: two blocks and a bit, then nothing more until the interrupt (the pipe stays open).
      cli.child.stdin.write(DATA.subarray(0, 2 * K256 + 500));
      await awaitCheckpoint(cli, file, (c) => c.bytesCommitted >= K256);
      cli.child.kill('SIGINT');
      const exit = await cli.exited;
      expect(exit.code, exit.stderr).toBe(130);
      const checkpoint = readCheckpoint(file)!;
      const session = ctx.server.listSessions().find((s) => s.name === name);
      // The session is open, and the file records everything it committed: the whole blocks read before the interrupt.
      expect(session?.state, exit.stderr).toBe('active');
      expect(checkpoint.bytesCommitted).toBe(session?.bytesCommitted);
      expect(checkpoint.bytesCommitted).toBeGreaterThanOrEqual(K256);
      expect(exit.stderr).toContain(`stopped with ${checkpoint.bytesCommitted} bytes committed`);
      expect(exit.stderr).toMatch(new RegExp(`resume with the input from byte ${checkpoint.bytesCommitted} on`));
      expect(exit.stderr).not.toContain('cancel');
      expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();

      // A resumed run interrupted before its first commit keeps the session too (the stream reports no checkpoint
      // before then: the one it resumed is what the file keeps).
      const queries = (): number => ctx.server.requests.filter((r) => r.object === name && r.kind === 'query').length;
      const queriesBefore = queries();
      const again = startCli(commandArgs(exit.stderr.split('\n').find((l) => l.includes('resume with'))!));
      await until(
        () => queries() > queriesBefore,
        "the resumed run's status query",
        [[ctx.server.activity, 'change']],
        () => again.stderr(),
        EVENT_TIMEOUT_MS,
      );
      again.child.kill('SIGINT');
      const againExit = await again.exited;
      expect(againExit.code, againExit.stderr).toBe(130);
      expect(ctx.server.listSessions().find((s) => s.name === name)?.state).toBe('active');
      expect(readCheckpoint(file)?.bytesCommitted).toBe(checkpoint.bytesCommitted);

      const resumed = await runResume(exit.stderr, DATA.subarray(checkpoint.bytesCommitted));
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(ctx.server.getObject(BUCKET, name)?.data.equals(DATA)).toBe(true);
      expect(ctx.server.listSessions().filter((s) => s.name === name)).toHaveLength(1); // the same session
      expect(existsSync(file)).toBe(false);
    },
    CHILDREN_TIMEOUT_MS,
  );

  it(
    'SIGTERM with --checkpoint while a request hangs: a second SIGTERM exits at once, the printed command completes the session',
    async () => {
      const name = uniqueName('cli-sigterm-checkpoint');
      const file = join(TMP, 'sigterm.ckpt');
      // The second request never gets an answer: committing what was read cannot finish, and the upload stands there.
      ctx.server.inject({ match: { kind: 'chunk', object: name, nth: 1 }, action: { type: 'stall' } });
      const cli = startCli([
        'cp',
        FILE,
        `gs://${BUCKET}/${name}`,
        '--endpoint',
        ctx.server.url,
        '--chunk-size',
        '256KiB',
        '-q',
        '--checkpoint',
        file,
      ]);
      cli.child.stdin.end();
      await awaitCheckpoint(cli, file, (c) => c.bytesCommitted > 0);
      // The hanging request must be this process's: signalled before it went out, the process would stop without it,
      // and the resumed one would meet the stall instead (and wait out its stall timeout).
      await until(
        () => ctx.server.requests.some((r) => r.object === name && r.fault !== undefined),
        'the hanging request',
        [[ctx.server.activity, 'change']],
        () => ({ stderr: cli.stderr(), requests: ctx.server.requests.filter((r) => r.object === name) }),
        EVENT_TIMEOUT_MS,
      );
      cli.child.kill('SIGTERM');
      // Stopping waits for the hanging request (unless the file was read whole: then it exits at once).
      const stopping = /SIGTERM: stopping; committing what was read so far/;
      await until(
        () => stopping.test(cli.stderr()) || cli.child.exitCode !== null,
        'the first SIGTERM handled',
        [
          [cli.child.stderr, 'data'],
          [cli.child, 'exit'],
        ],
        () => cli.stderr(),
        EVENT_TIMEOUT_MS,
      );
      if (cli.child.exitCode === null) cli.child.kill('SIGTERM');
      const exit = await cli.exited;
      expect(exit.code, exit.stderr).toBe(143);
      expect(ctx.server.listSessions().find((s) => s.name === name)?.state).toBe('active');
      // Printed with --quiet too: it is what makes the open session of any use.
      expect(exit.stderr).toContain(`resume with: gcs-stream cp ${FILE}`);

      const resumed = await runResume(exit.stderr);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(ctx.server.getObject(BUCKET, name)?.data.equals(DATA)).toBe(true);
      expect(ctx.server.listSessions().filter((s) => s.name === name)).toHaveLength(1);
      expect(existsSync(file)).toBe(false);
    },
    CHILDREN_TIMEOUT_MS,
  );

  it(
    'SIGINT while the session is being opened says that nothing was uploaded',
    async () => {
      const name = uniqueName('cli-sigint-open');
      ctx.server.inject({ match: { kind: 'open', object: name }, action: { type: 'stall' } });
      const cli = startCli(['cp', FILE, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url]);
      cli.child.stdin.end();
      await until(
        () => ctx.server.requests.some((r) => r.object === name && r.kind === 'open'),
        'the open request',
        [[ctx.server.activity, 'change']],
        () => cli.stderr(),
        EVENT_TIMEOUT_MS,
      );
      cli.child.kill('SIGINT');
      const exit = await cli.exited;
      expect(exit.code, exit.stderr).toBe(130);
      expect(exit.stderr).toContain('interrupted before the upload session was open: nothing was uploaded, no object was created');
      expect(exit.stderr).not.toContain('may or may not');
      expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    },
    CHILDREN_TIMEOUT_MS,
  );
});
