import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedDigest, K256, storedDigest, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const FIXTURE = join(import.meta.dirname, 'fixtures', 'crash-upload.ts');

interface Child {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill: () => void;
  /** Resolves when the child printed a checkpoint of at least `bytes`; rejects if it exits first. */
  committed: (bytes: number) => Promise<void>;
}

function run(args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ bytes: number; resolve: () => void }> = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const match of stdout.matchAll(/^checkpoint (\d+)$/gm)) {
      const bytes = Number(match[1]);
      for (const waiter of waiters.filter((w) => bytes >= w.bytes)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const committed = (bytes: number): Promise<void> =>
    Promise.race([
      new Promise<void>((resolve) => waiters.push({ bytes, resolve })),
      exited.then((r) => Promise.reject(new Error(`child exited early (${r.code}): ${r.stderr}`))),
    ]);
  return { exited, kill: () => child.kill('SIGKILL'), committed };
}

describe('crash-resume across processes', () => {
  it('an upload killed with SIGKILL resumes in a fresh process from its last checkpoint, byte-identical', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gcs-crash-'));
    const checkpointFile = join(dir, 'checkpoint.json');
    const name = 'crash/resume.bin';
    const size = 10 * K256 + 12_345;
    const common = ['--endpoint', ctx.server.url, '--name', name, '--size', String(size), '--checkpoint', checkpointFile];

    const first = run([...common, '--stall-after', String(4 * K256 + 1000)]);
    // Wait until the child reports a durable checkpoint of four committed chunks, then kill it.
    await first.committed(4 * K256);
    first.kill();
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    expect(storedDigest(ctx.server, name)).toBeUndefined();

    const second = await run([...common, '--resume']).exited;
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(JSON.parse(/^done (.*)$/m.exec(second.stdout)![1]!)).toMatchObject({ size: String(size) });
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });
});
