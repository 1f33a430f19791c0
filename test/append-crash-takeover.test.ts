/**
 * Appendable objects across processes: a writer killed with SIGKILL mid-stream is taken over from its checkpoint
 * file by a new process, which finishes the object; a takeover while the first writer still lives supersedes it.
 * The server runs here; the writers are test/fixtures/crash-append.ts in child processes, over real gRPC.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AppendableCheckpoint } from '../src/index.js';
import { startTsx, until, type RunningChild } from './child.js';
import { contentAt, KiB, MiB, useLocalAppendGcs } from './helpers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'crash-append.ts');
const ROOT = join(import.meta.dirname, '..');
const BUCKET = 'zonal-bucket';
const SIZE = 3 * MiB + 12_345;
const FLUSH_EVERY = 256 * KiB;
/** The last checkpoint the first writer stores: its flush at 1 MiB. */
const CHECKPOINTED = 4 * FLUSH_EVERY;
/**
 * The server persists the first STALL_AT bytes, then stops reading and answering: the writer is mid-stream, with
 * bytes in flight and a flush waiting, and the object holds more than its last checkpoint (more, too, than the
 * resumed writer's first 64 KiB write).
 */
const STALL_AT = CHECKPOINTED + 100_000;

const ctx = useLocalAppendGcs();

function writer(name: string, checkpointFile: string, extra: string[] = []): RunningChild {
  const args = ['--grpc-endpoint', ctx.server.grpc.address, '--name', name, '--size', String(SIZE), '--checkpoint', checkpointFile];
  return startTsx(FIXTURE, [...args, '--flush-every', String(FLUSH_EVERY), ...extra], { cwd: ROOT });
}

/** Resolves once `running` printed a checkpoint of at least `bytes`; rejects if it exits first. */
function checkpointed(running: RunningChild, bytes: number): Promise<void> {
  const reached = (): boolean => [...running.stdout().matchAll(/^checkpoint (\d+)$/gm)].some((m) => Number(m[1]) >= bytes);
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!reached()) return;
      running.child.stdout.off('data', check);
      resolve();
    };
    running.child.stdout.on('data', check);
    void running.exited.then((exit) => reject(new Error(`the writer exited (${exit.code}) first: ${exit.stdout}${exit.stderr}`)));
    check();
  });
}

/** Starts the first writer and resolves once it is stalled mid-stream past its last checkpoint. */
async function stalledWriter(name: string, checkpointFile: string): Promise<RunningChild> {
  ctx.server.grpc.inject({ match: { bucket: BUCKET, object: name, offset: STALL_AT }, action: { type: 'stall' } });
  const first = writer(name, checkpointFile);
  await checkpointed(first, CHECKPOINTED);
  const size = (): number => ctx.server.grpc.appendable(BUCKET, name)?.size ?? 0;
  await until(() => size() >= STALL_AT, 'the stalled persist', [[ctx.server.activity, 'change']], size);
  const checkpoint = JSON.parse(readFileSync(checkpointFile, 'utf8')) as AppendableCheckpoint;
  expect(checkpoint).toMatchObject({ kind: 'appendable', bucket: BUCKET, name, bytesCommitted: CHECKPOINTED });
  return first;
}

function expectFinished(name: string, generation: string | undefined): void {
  expect(ctx.server.grpc.appendable(BUCKET, name)).toEqual({ size: SIZE, finalized: true, generation });
  expect(ctx.server.getObject(BUCKET, name)?.data.equals(contentAt(0, SIZE))).toBe(true);
}

describe('appendable objects: takeover in a new process', () => {
  it('a writer killed with SIGKILL mid-stream is taken over from its checkpoint file and the object finished, byte-identical', async () => {
    const name = 'crash/killed.log';
    const checkpointFile = join(mkdtempSync(join(tmpdir(), 'gcs-append-crash-')), 'checkpoint.json');
    const first = await stalledWriter(name, checkpointFile);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // The dead writer's object: unfinalized, holding a prefix of the content, more than the checkpoint says.
    const left = ctx.server.grpc.appendable(BUCKET, name);
    expect(left).toMatchObject({ size: STALL_AT, finalized: false });
    const held = ctx.server.getObject(BUCKET, name)!.data;
    expect(held.equals(contentAt(0, STALL_AT))).toBe(true);

    const second = await writer(name, checkpointFile, ['--resume']).exited;
    expect(second.stdout).toMatch(/^done /m);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(JSON.parse(/^done (.*)$/m.exec(second.stdout)![1]!)).toEqual({ generation: left?.generation, size: SIZE });
    expectFinished(name, left?.generation);
  });

  it('a takeover while the first writer is alive: the first fails with SupersededError and opens no stream again', async () => {
    const name = 'crash/superseded.log';
    const checkpointFile = join(mkdtempSync(join(tmpdir(), 'gcs-append-crash-')), 'checkpoint.json');
    const first = await stalledWriter(name, checkpointFile);
    const generation = ctx.server.grpc.appendable(BUCKET, name)?.generation;
    const before = ctx.server.grpc.streams.length;
    const [firstExit, secondExit] = await Promise.all([first.exited, writer(name, checkpointFile, ['--resume']).exited]);
    expect(firstExit.stdout).toMatch(/^failed SupersededError ERR_GCS_UPLOAD_SUPERSEDED$/m);
    expect(firstExit.code).toBe(1);
    expect(secondExit.stdout).toMatch(/^done /m);
    expect(secondExit.code).toBe(0);
    // Since the takeover, one stream only: the second writer's. The first wrote nothing more.
    expect(ctx.server.grpc.streams.slice(before).map((s) => [s.kind, s.status, s.bytesReceived])).toEqual([
      ['append', 'OK', SIZE - STALL_AT],
    ]);
    expectFinished(name, generation);
  });
});
