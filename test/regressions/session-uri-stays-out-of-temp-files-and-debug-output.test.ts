import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { UploadCheckpoint } from '../../src/index.js';
import { runTsxScript, startTsx, until } from '../child.js';
import { BUCKET, contentAt, K256, uniqueName, useLocalGcs } from '../helpers.js';

// Issue 12, defect 9 (its CLI and debug parts). The session URI is a bearer capability; before the fix it leaked in
// two ways:
//  - `gcs-stream cp --checkpoint FILE` wrote each checkpoint to `FILE.<pid>.tmp`, opened with 'w': a symlink planted
//    at that predictable name in a shared directory was followed, and the checkpoint (session URI included) was
//    written to whatever file it pointed at;
//  - NODE_DEBUG=gcs-resumable-stream lines kept URL paths, and emulators such as fake-gcs-server put the session id
//    in the path (`/upload/resumable/<id>`), so every request line printed it.

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..', '..');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-uri-private-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function readCheckpoint(path: string): UploadCheckpoint | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as UploadCheckpoint;
  } catch {
    return undefined;
  }
}

describe('regression: the session URI stays out of planted temporary files and debug output', () => {
  it('gcs-stream --checkpoint never follows a symlink planted at the temporary file name', async () => {
    const name = uniqueName('planted');
    const checkpointFile = join(TMP, 'upload.ckpt');
    const victim = join(TMP, 'victim.txt');
    writeFileSync(victim, 'not yours\n');
    const cli = startTsx(
      join(ROOT, 'src', 'cli.ts'),
      [
        'cp',
        '-',
        `gs://${BUCKET}/${name}`,
        '--endpoint',
        ctx.server.url,
        '--chunk-size',
        '256KiB',
        '--checkpoint',
        checkpointFile,
        '--quiet',
      ],
      { cwd: ROOT },
    );
    // The name the CLI used to write to, planted before it can get there (it first has to start Node.js and load).
    const planted = `${checkpointFile}.${cli.child.pid}.tmp`;
    symlinkSync(victim, planted);
    cli.child.stdin.write(contentAt(0, K256 + 10));
    const watcher = watch(TMP);
    try {
      await until(
        () => readCheckpoint(checkpointFile)?.bytesCommitted === K256,
        'a checkpoint at 256 KiB',
        [
          [watcher, 'change'],
          [ctx.server.activity, 'change'],
        ],
        () => cli.stderr(),
      );
      // Checked while the upload is open: the checkpoint is a file of its own, readable by its owner only.
      expect(lstatSync(checkpointFile).isFile()).toBe(true);
      expect(lstatSync(checkpointFile).mode & 0o777).toBe(0o600);
    } finally {
      watcher.close();
    }
    cli.child.stdin.end();
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, K256 + 10))).toBe(true);
    expect(readFileSync(victim, 'utf8')).toBe('not yours\n');
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(readlinkSync(planted)).toBe(victim);
  });

  it('NODE_DEBUG lines never show a session id that the emulator put in the URL path', async () => {
    const src = (path: string): string => JSON.stringify(join(ROOT, path));
    // The child starts an emulator-like server that puts the session id in the path of Location, uploads through
    // it, and prints the session ids (the parent looks for them in the debug output).
    const script = `
      import { Readable } from 'node:stream';
      import { pipeline } from 'node:stream/promises';
      import { createGcsWriteStream } from ${src('src/index.ts')};
      import { startBareGcs } from ${src('test/fixtures/bare-gcs.ts')};
      const server = await startBareGcs({ sessionIdIn: 'path' });
      const stream = createGcsWriteStream({ bucket: 'debug-bucket', name: 'debug-object', apiEndpoint: server.url, chunkSize: ${K256},
        adaptiveRequests: false, retry: { initialDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5000 } });
      stream.on('session', (uri) => console.log('session-path ' + new URL(uri).pathname));
      await pipeline(Readable.from([Buffer.alloc(${2 * K256 + 7}, 1)]), stream);
      console.log('stored ' + server.objects.get('debug-bucket/debug-object').data.length);
      for (const id of server.sessionIds) console.log('session-id ' + id);
      await server.close();
    `;
    const { code, stdout, stderr } = await runTsxScript(script, { cwd: ROOT, env: { NODE_DEBUG: 'gcs-resumable-stream' } });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`^stored ${2 * K256 + 7}$`, 'm'));
    const ids = [...stdout.matchAll(/^session-id (\S+)$/gm)].map((match) => match[1]!);
    expect(ids).toHaveLength(1);
    expect(stdout).toContain(`session-path /upload/resumable/${ids[0]}`); // the emulator did put it in the path

    expect(stderr).not.toContain(ids[0]);
    expect(stderr).not.toContain('/upload/resumable/');
    // Requests still say where they went, except that a session request says only that it was one.
    expect(stderr).toMatch(
      /GCS-RESUMABLE-STREAM \d+: request method=POST url=http:\/\/127\.0\.0\.1:\d+\/upload\/storage\/v1\/b\/debug-bucket\/o /,
    );
    expect(stderr).toMatch(/GCS-RESUMABLE-STREAM \d+: request method=PUT url=<session> range="bytes 0-262143\/\*"/);
    expect(stderr).not.toContain('debug-object'); // the object name is in the query of the session request
  });
});
