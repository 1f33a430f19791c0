/**
 * `gcs-stream cp - gs://BUCKET/OBJECT --appendable`: piped output goes into an appendable object over gRPC, readable
 * while the pipe is open; `--no-finalize` leaves it appendable; flags that only mean something to one kind of write
 * are usage errors.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTsx, until } from './child.js';
import { BUCKET, contentAt, KiB, uniqueName, useLocalAppendGcs } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const ctx = useLocalAppendGcs();

function appendCli(name: string, extra: string[] = []) {
  return startTsx(CLI, ['cp', '-', `gs://${BUCKET}/${name}`, '--appendable', '--grpc-endpoint', ctx.server.grpc.address, ...extra], {
    cwd: ROOT,
    env: { CI: '1' },
  });
}

describe('cp --appendable', () => {
  it('a slow pipe: its bytes are readable while it stays open, then the object is finalized', async () => {
    const name = uniqueName('cli-live');
    const cli = appendCli(name, ['--max-uncommitted', '50ms', '--json']);
    // Less than one 256 KiB block: a resumable upload could not commit it before the end.
    const first = 10 * KiB;
    cli.child.stdin.write(contentAt(0, first));
    await until(
      () => (ctx.server.grpc.appendable(BUCKET, name)?.size ?? 0) >= first,
      'the first bytes persisted',
      [[ctx.server.activity, 'change']],
      () => cli.stderr(),
    );
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, first))).toBe(true);
    expect(ctx.server.grpc.appendable(BUCKET, name)?.finalized).toBe(false);
    cli.child.stdin.end(contentAt(first, 5000));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: first + 5000, finalized: true });
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, first + 5000))).toBe(true);
    expect(JSON.parse(exit.stdout)).toMatchObject({ bucket: BUCKET, name, size: first + 5000, finalized: true });
    expect(exit.stderr).toMatch(/appended .* finalized/);
  });

  it('--no-finalize leaves the object appendable with every byte persisted', async () => {
    const name = uniqueName('cli-open');
    const cli = appendCli(name, ['--no-finalize', '--json', '-q']);
    cli.child.stdin.end(contentAt(0, 70 * KiB));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(ctx.server.grpc.appendable(BUCKET, name)).toMatchObject({ size: 70 * KiB, finalized: false });
    expect(JSON.parse(exit.stdout)).toMatchObject({ size: 70 * KiB, finalized: false, crc32c: null });
  });

  it('refuses flags of the other kind of write, exit 2, before anything is sent', async () => {
    const name = uniqueName('cli-mixed');
    const cases: [string[], RegExp][] = [
      [
        ['cp', '-', `gs://${BUCKET}/${name}`, '--endpoint', ctx.server.url, '--no-finalize'],
        /--no-finalize only applies with --appendable/,
      ],
      [['cp', '-', `gs://${BUCKET}/${name}`, '--appendable', '--chunk-size', '16MiB'], /--chunk-size does not apply with --appendable/],
      // The JSON API endpoint: the message names the flag that gives the gRPC one.
      [
        ['cp', '-', `gs://${BUCKET}/${name}`, '--appendable', '--endpoint', ctx.server.url],
        /--endpoint \(the JSON API endpoint\) does not apply with --appendable: give the gRPC endpoint with --grpc-endpoint HOST:PORT/,
      ],
    ];
    for (const [args, message] of cases) {
      const cli = startTsx(CLI, args, { cwd: ROOT });
      cli.child.stdin.end();
      const exit = await cli.exited;
      expect(exit.code, exit.stderr).toBe(2);
      expect(exit.stderr).toMatch(message);
    }
    expect(ctx.server.grpc.streams.filter((s) => s.object === name)).toEqual([]);
    expect(ctx.server.requests.filter((r) => r.object === name)).toEqual([]);
  });
});
