/**
 * Slow streams (issue 15): a time bound on data at risk (`maxUncommittedMs`) and `flush()`. Requests are exact
 * chunks of 1 MiB here (adaptiveRequests false), so without the bound nothing below a chunk would be committed
 * before end(): what the server holds shows the bound at work.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, SessionExpiredError, type GcsResumableWritable } from '../src/index.js';
import { until } from './child.js';
import {
  BUCKET,
  contentAt,
  expectedDigest,
  K256,
  KiB,
  MiB,
  storedDigest,
  streamOptions,
  uniqueName,
  useLocalGcs,
  written,
} from './helpers.js';

const ctx = useLocalGcs();

function committedOnServer(name: string): number {
  return ctx.server.listSessions().find((s) => s.name === name)?.bytesCommitted ?? 0;
}

function serverCommits(name: string, bytes: number): Promise<void> {
  return until(
    () => committedOnServer(name) >= bytes,
    `${bytes} bytes committed on the server`,
    [[ctx.server.activity, 'change']],
    () => committedOnServer(name),
  );
}

function slowStream(name: string, maxUncommittedMs: number): GcsResumableWritable {
  return createGcsWriteStream(streamOptions(ctx.server, name, { chunkSize: MiB, bufferChunks: 2, maxUncommittedMs }));
}

describe('maxUncommittedMs', () => {
  it('a trickling source gets its full blocks committed within the bound; the unaligned tail goes with end()', async () => {
    const name = uniqueName('bound');
    const stream = slowStream(name, 40);
    let pos = 0;
    for (const n of [100 * KiB, 100 * KiB, 100 * KiB]) {
      await written(stream, contentAt(pos, n));
      pos += n;
    }
    // 300 KiB: one full block, committed by the bound although the 1 MiB chunk is far from full.
    await serverCommits(name, K256);
    expect(committedOnServer(name)).toBe(K256);
    await until(() => stream.bytesCommitted === K256, 'the commit to reach the stream', [[stream, 'progress']]);
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(pos));
  });

  it('must be a positive integer of milliseconds, or Infinity', () => {
    expect(() => slowStream('x', 0)).toThrow(/maxUncommittedMs must be a positive integer/);
    expect(() => slowStream('x', 1.5)).toThrow(/maxUncommittedMs/);
    slowStream(uniqueName('infinite'), Number.POSITIVE_INFINITY).destroy();
  });

  it('a fault during a timed commit is recovered like any other', async () => {
    const name = uniqueName('bound-fault');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'reset', afterBytes: 1000 } });
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503, when: 'after' } });
    const stream = slowStream(name, 20);
    await written(stream, contentAt(0, K256 + 10));
    await serverCommits(name, K256);
    await written(stream, contentAt(K256 + 10, K256));
    await serverCommits(name, 2 * K256);
    stream.end(contentAt(2 * K256 + 10, 5));
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 15));
  });
});

describe('flush()', () => {
  it('commits every full block now and resolves with the offset the server confirmed', async () => {
    const name = uniqueName('flush');
    const stream = slowStream(name, Number.POSITIVE_INFINITY);
    const checkpoints: number[] = [];
    stream.on('checkpoint', (c) => checkpoints.push(c.bytesCommitted));
    await written(stream, contentAt(0, 600 * KiB));
    expect(committedOnServer(name)).toBe(0);
    const offset = await stream.flush();
    expect(offset).toBe(2 * K256);
    expect(committedOnServer(name)).toBe(2 * K256);
    expect(checkpoints).toContain(2 * K256);
    // Nothing more can be committed before more data: resolves at once with the same offset.
    expect(await stream.flush()).toBe(2 * K256);
    stream.end();
    await finished(stream);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(600 * KiB));
    // After the end: the whole object.
    expect(await stream.flush()).toBe(600 * KiB);
  });

  it('rejects when the upload fails', async () => {
    const name = uniqueName('flush-fails');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'expire', status: 404 } });
    const stream = slowStream(name, Number.POSITIVE_INFINITY);
    stream.on('error', () => undefined);
    await written(stream, contentAt(0, K256 + 1));
    await expect(stream.flush()).rejects.toBeInstanceOf(SessionExpiredError);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });
});

describe('a crash of a slow stream', () => {
  it('SIGKILL loses at most the partial block after the last commit, and the upload resumes from its checkpoint', async () => {
    const fixture = join(import.meta.dirname, 'fixtures', 'crash-upload.ts');
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'gcs-slow-crash-')), 'checkpoint.json');
    const name = uniqueName('slow-crash');
    const size = 3 * MiB;
    const stallAfter = 5 * K256 + 70 * KiB;
    const common = ['--endpoint', ctx.server.url, '--name', name, '--size', String(size), '--checkpoint', checkpoint];
    const options = ['--chunk-size', String(8 * MiB), '--exact-requests', '--max-uncommitted-ms', '30'];
    const first = spawn(process.execPath, ['--import', 'tsx', fixture, ...common, ...options, '--stall-after', String(stallAfter)], {
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => first.on('exit', (_code, signal) => resolve(signal)));
    // Every full block the child wrote reaches the server although the 8 MiB chunk never fills.
    await serverCommits(name, 5 * K256);
    first.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const lost = stallAfter - committedOnServer(name);
    expect(lost).toBeLessThan(K256);
    const second = spawn(process.execPath, ['--import', 'tsx', fixture, ...common, ...options, '--resume'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => second.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(size));
  });
});
