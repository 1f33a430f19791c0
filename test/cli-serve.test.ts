import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTsx, until, type Exit } from './child.js';
import { K256 } from './helpers.js';

// Issue 22, item 6: trying the CLI against the local server needed a script. `gcs-stream serve` runs it.

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-cli-serve-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/**
 * Each test runs several CLI processes, each compiling TypeScript (tsx) first: on a loaded 2-core machine that alone
 * can take tens of seconds, so the guards against a hang are generous (nothing here waits on a timer).
 */
const CHILDREN_TIMEOUT_MS = 180_000;
/** How long an awaited event may take to come (see CHILDREN_TIMEOUT_MS). */
const EVENT_TIMEOUT_MS = 120_000;

function run(args: string[], env: Record<string, string>, input?: Buffer): Promise<Exit> {
  const cli = startTsx(CLI, args, { cwd: ROOT, env });
  cli.child.stdin.end(input);
  return cli.exited;
}

describe('gcs-stream serve', () => {
  it(
    'prints its endpoints and env lines; cp and cat work through them; SIGTERM stops it with exit 0',
    async () => {
      const server = startTsx(CLI, ['serve', '--port', '0', '--grpc-port', '0'], { cwd: ROOT });
      try {
        const envLine = /^export STORAGE_EMULATOR_HOST=(http:\/\/127\.0\.0\.1:\d+) STORAGE_EMULATOR_HOST_GRPC=(127\.0\.0\.1:\d+)$/m;
        await until(
          () => envLine.test(server.stdout()),
          'the endpoints',
          [[server.child.stdout, 'data']],
          () => server.stderr(),
          EVENT_TIMEOUT_MS,
        );
        const [, json, grpc] = envLine.exec(server.stdout())!;
        expect(server.stdout()).toContain(`JSON API: ${json}`);
        expect(server.stdout()).toContain(`gRPC:     ${grpc}`);
        const env = { STORAGE_EMULATOR_HOST: json!, STORAGE_EMULATOR_HOST_GRPC: grpc! };

        const data = randomBytes(K256 + 40).toString('hex'); // text: the child's stdout is read as UTF-8
        const file = join(TMP, 'data.bin');
        writeFileSync(file, data);
        const copied = await run(['cp', file, 'gs://any-bucket/from-file', '--chunk-size', '256KiB', '--json'], env);
        expect(copied.code, copied.stderr).toBe(0);
        expect(JSON.parse(copied.stdout)).toMatchObject({ size: data.length });
        const appended = await run(['cp', '-', 'gs://any-bucket/appended', '--appendable', '-q'], env, Buffer.from('live log\n'));
        expect(appended.code, appended.stderr).toBe(0);

        // --port is honoured: a second server on this one's port cannot start.
        const port = new URL(json!).port;
        const taken = await run(['serve', '--port', port], {});
        expect(taken.code, taken.stderr).toBe(1);
        expect(taken.stderr).toContain('cannot start the local server: the port is in use');

        const [read, readAppended] = await Promise.all([
          run(['cat', 'gs://any-bucket/from-file'], env),
          run(['cat', 'gs://any-bucket/appended'], env),
        ]);
        expect(read.code, read.stderr).toBe(0);
        expect(read.stdout).toBe(data);
        expect(readAppended.stdout).toBe('live log\n');
      } finally {
        server.child.kill('SIGTERM');
      }
      const exit = await server.exited;
      expect(exit.signal).toBeNull();
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stderr).toContain('SIGTERM: stopping the local server');
    },
    CHILDREN_TIMEOUT_MS,
  );

  it(
    'refuses a port that is not one (exit 2)',
    async () => {
      const exit = await run(['serve', '--port', '70000'], {});
      expect(exit.code).toBe(2);
      expect(exit.stderr).toMatch(/"70000" is not a port: use 0-65535/);
    },
    CHILDREN_TIMEOUT_MS,
  );

  it(
    'is the only command that loads the testing server, through a dynamic import',
    () => {
      const files = [join(ROOT, 'src', 'cli.ts'), ...readdirSync(join(ROOT, 'src', 'cli')).map((file) => join(ROOT, 'src', 'cli', file))];
      for (const file of files) {
        const text = readFileSync(file, 'utf8');
        expect(text, file).not.toMatch(/^import [^;]*from '\.\.?\/(?:\.\.\/)?testing\//m);
      }
      expect(readFileSync(join(ROOT, 'src', 'cli', 'serve.ts'), 'utf8')).toContain("await import('../testing/index.js')");
    },
    CHILDREN_TIMEOUT_MS,
  );
});
