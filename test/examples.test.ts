/** Runs every example in examples/ (but the demo, which has its own script) against a local server. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTsx, until, type Exit, type RunningChild } from './child.js';
import { afterAll, describe, expect, it } from 'vitest';
import { BUCKET, K256, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-stream-examples-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function start(example: string, args: string[], env: Record<string, string> = {}): RunningChild {
  const running = startTsx(join(ROOT, 'examples', example), args, { cwd: ROOT, env });
  running.child.stdin.end();
  return running;
}

const runExample = (example: string, args: string[], env?: Record<string, string>): Promise<Exit> => start(example, args, env).exited;

function dataFile(label: string, size: number): { path: string; data: Buffer } {
  const data = randomBytes(size);
  const path = join(TMP, `${label}.bin`);
  writeFileSync(path, data);
  return { path, data };
}

/** PUTs `body` to `url`; resolves with the status and the parsed JSON answer. */
function put(url: string, body: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'content-type': 'application/x-test' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('examples', () => {
  it('pipe-file.ts uploads a file with progress (endpoint from --endpoint)', async () => {
    const { path, data } = dataFile('pipe', 1_000_003);
    const exit = await runExample('pipe-file.ts', [path, `gs://${BUCKET}/examples/pipe.bin`, '--endpoint', ctx.server.url]);
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toMatch(/^100% \(1000003 of 1000003 bytes/m);
    const object = ctx.server.getObject(BUCKET, 'examples/pipe.bin')!;
    expect(object.data.equals(data)).toBe(true);
    expect(JSON.parse(exit.stdout)).toMatchObject({
      size: 1_000_003,
      generation: object.resource.generation,
      crc32c: object.resource.crc32c,
    });
  });

  it('http-body-to-gcs.ts streams request bodies into objects (endpoint from STORAGE_EMULATOR_HOST)', async () => {
    const server = start('http-body-to-gcs.ts', ['--bucket', BUCKET, '--port', '0'], { STORAGE_EMULATOR_HOST: ctx.server.url });
    try {
      await until(() => /listening on (http:\S+)/.test(server.stdout()), 'the example to listen', [[server.child.stdout, 'data']]);
      const base = /listening on (http:\S+)/.exec(server.stdout())![1]!;
      const bodies = [randomBytes(3 * K256 + 99), randomBytes(10)];
      const answers = await Promise.all(bodies.map((body, i) => put(`${base}/examples/http/${i}.bin`, body)));
      answers.forEach((answer, i) => {
        const object = ctx.server.getObject(BUCKET, `examples/http/${i}.bin`)!;
        expect(answer).toEqual({
          status: 201,
          json: {
            name: `examples/http/${i}.bin`,
            generation: object.resource.generation,
            size: String(bodies[i]!.length),
            crc32c: object.resource.crc32c,
          },
        });
        expect(object.data.equals(bodies[i]!)).toBe(true);
        expect(object.resource.contentType).toBe('application/x-test');
      });

      // Names that are not object names are refused before anything is sent to GCS.
      const sessions = ctx.server.sessionCount;
      for (const path of ['/', '/%E0%A4%A']) expect((await put(`${base}${path}`, Buffer.from('x'))).status).toBe(400);
      expect(ctx.server.sessionCount).toBe(sessions);

      // A client that disconnects mid-body: the session is cancelled, no object appears.
      const name = 'examples/http/aborted.bin';
      const aborted = request(`${base}/${name}`, { method: 'PUT' });
      aborted.on('error', () => undefined);
      aborted.write(randomBytes(K256 + 5));
      const session = () => ctx.server.listSessions().find((s) => s.name === name);
      await until(() => session() !== undefined, 'the session to open', [[ctx.server.activity, 'change']]);
      aborted.destroy();
      await until(() => session()?.state === 'cancelled', 'the session to be cancelled', [[ctx.server.activity, 'change']]);
      expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('resume-after-crash.ts continues the same session after being killed', async () => {
    const { path, data } = dataFile('crash', 5 * K256 + 1234);
    const name = 'examples/crash.bin';
    const args = [path, `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--chunk-kib', '256'];
    const crashed = await runExample('resume-after-crash.ts', [...args, '--crash-after', String(2 * K256)]);
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(existsSync(`${path}.checkpoint.json`)).toBe(true);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();

    const resumed = await runExample('resume-after-crash.ts', args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming: \d+ bytes were committed before/);
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
    expect(ctx.server.listSessions().filter((s) => s.name === name)).toHaveLength(1);
    expect(existsSync(`${path}.checkpoint.json`)).toBe(false);
  });

  it('demo-append.ts (npm run demo:append): a second process follows the live appendable log with createGcsReadStream, to its finalization', async () => {
    const exit = await runExample('demo-append.ts', ['--lines', '30', '--flush-every', '10']);
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout.match(/finalized: false/g)).toHaveLength(3);
    expect(exit.stdout).toMatch(/finalized: true; \d+ bytes read while written, every byte exactly once/);
  });

  it('stream-a-log.ts streams a build log with the time bound, is killed half-way, resumes: every byte exactly once', async () => {
    const name = 'examples/build.log';
    const lines = 40_000;
    const checkpoint = join(TMP, 'log.checkpoint.json');
    const args = [
      `gs://${BUCKET}/${name}`,
      '--endpoint',
      ctx.server.url,
      '--checkpoint',
      checkpoint,
      '--lines',
      String(lines),
      '--bound-ms',
      '50',
    ];
    const crashed = await runExample('stream-a-log.ts', [...args, '--crash-after', String(2 * K256)]);
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    const committed = ctx.server.listSessions().find((s) => s.name === name)!.bytesCommitted;
    expect(committed).toBeGreaterThanOrEqual(2 * K256);

    const resumed = await runExample('stream-a-log.ts', args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming: \d+ bytes were committed before/);
    let expected = '';
    for (let line = 1; line <= lines; line++) expected += `build step ${line} of ${lines}: ok\n`;
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe(expected);
    expect(ctx.server.listSessions().filter((s) => s.name === name)).toHaveLength(1);
    expect(existsSync(checkpoint)).toBe(false);
  });

  it('test-your-pipeline.ts passes its own tests', async () => {
    const exit = await runExample('test-your-pipeline.ts', []);
    expect(exit.code, exit.stdout).toBe(0);
    // The summary of node:test's default reporter: TAP (`# pass 3`) up to Node 22, spec (`ℹ pass 3`) from Node 23 on.
    expect(exit.stdout).toMatch(/^(?:#|ℹ) pass 3$/mu);
    expect(exit.stdout).toMatch(/^(?:#|ℹ) fail 0$/mu);
  });
});
