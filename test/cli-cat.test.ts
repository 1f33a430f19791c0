/**
 * `gcs-stream cat [--follow [--json]] gs://BUCKET/OBJECT`: prints an object; with --follow, prints an appendable
 * object's bytes as they are persisted (over gRPC BidiReadObject; with --json, by polling the JSON API), and exits once
 * it is finalized with every byte printed exactly once.
 */
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createGcsAppendStream, createGcsWriteStream } from '../src/index.js';
import { startTsx, until } from './child.js';
import { RANGE_BYTES } from '../src/cli/object-reader.js';
import { BUCKET, FAST_RETRY, uniqueName, useLocalAppendGcs } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const ctx = useLocalAppendGcs();

function catCli(args: string[]) {
  return startTsx(CLI, ['cat', ...args, '--endpoint', ctx.server.url, '--grpc-endpoint', ctx.server.grpc.address], { cwd: ROOT });
}

/** Log lines, ASCII so that the child's stdout, read as text, compares byte for byte. */
function lines(from: number, count: number): string {
  let text = '';
  for (let i = from; i < from + count; i++) text += `line ${i}: ${'x'.repeat(i % 50)}\n`;
  return text;
}

/** An unfinalized appendable object holding `text` (flushed), and the stream that writes it. */
async function appendable(name: string, text: string) {
  const stream = createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: ctx.server.grpc.address, retry: FAST_RETRY });
  stream.on('error', () => undefined); // the object goes away under it in some tests
  stream.write(text);
  await stream.flush();
  return { stream, written: text };
}

/** `cat --follow` (`--json`: over the JSON API) on a new unfinalized appendable object of 20 lines, once it printed them. */
async function following(prefix: string, json = false) {
  const name = uniqueName(prefix);
  const { stream, written } = await appendable(name, lines(0, 20));
  const cli = catCli(['--follow', ...(json ? ['--json'] : []), '--interval', '20ms', `gs://${BUCKET}/${name}`]);
  await until(
    () => cli.stdout() === written,
    'the flushed bytes on stdout',
    [[cli.child.stdout, 'data']],
    () => cli.stderr(),
  );
  return { name, stream, written, cli };
}

describe('cat', () => {
  it('--follow prints every flushed piece while the object is written, and exits 0 once it is finalized', async () => {
    const name = uniqueName('cat-follow');
    const stream = createGcsAppendStream({ bucket: BUCKET, name, grpcEndpoint: ctx.server.grpc.address, retry: FAST_RETRY });
    let written = lines(0, 10);
    stream.write(written);
    await stream.flush();
    const cli = catCli(['--follow', '--interval', '20ms', `gs://${BUCKET}/${name}`]);
    for (let piece = 1; piece <= 4; piece++) {
      await until(
        () => cli.stdout() === written,
        `the first ${written.length} bytes on stdout`,
        [[cli.child.stdout, 'data']],
        () => cli.stderr(),
      );
      const more = lines(piece * 10, 10 + piece * 40);
      stream.write(more);
      written += more;
      await stream.flush();
    }
    await until(
      () => cli.stdout() === written,
      'every flushed byte on stdout',
      [[cli.child.stdout, 'data']],
      () => cli.stderr(),
    );
    expect(cli.child.exitCode).toBe(null); // still following: the object is not finalized
    const last = lines(1000, 3);
    stream.end(last);
    written += last;
    await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toBe(written);
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe(written);
  });

  it('prints a finalized object uploaded through the JSON API, larger than one ranged read', async () => {
    const name = uniqueName('cat-json');
    const text = lines(0, 60_000); // ~3.5 MiB: two ranged reads
    await pipeline(Readable.from([Buffer.from(text)]), createGcsWriteStream({ bucket: BUCKET, name, apiEndpoint: ctx.server.url }));
    for (const args of [[`gs://${BUCKET}/${name}`], ['--follow', '--interval', '20ms', `gs://${BUCKET}/${name}`]]) {
      const exit = await catCli(args).exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout.length).toBe(text.length);
      expect(exit.stdout === text).toBe(true);
    }
  });

  it('--follow stops with ERR_GCS_READ_OBJECT_GONE when the followed object is deleted, saying how many bytes it printed', async () => {
    const { name, stream, written, cli } = await following('cat-grpc-deleted');
    const generation = ctx.server.getObject(BUCKET, name)?.resource.generation;
    expect(ctx.server.deleteObject(BUCKET, name)).toBe(true);
    const exit = await cli.exited;
    stream.destroy();
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stdout).toBe(written);
    expect(exit.stderr).toBe(
      `gcs-stream: error: gs://${BUCKET}/${name} generation ${generation} was deleted while it was read, after ` +
        `${written.length} bytes were delivered; nothing more can be read (ERR_GCS_READ_OBJECT_GONE)\n`,
    );
  });

  it('--follow stops with ERR_GCS_READ_OBJECT_GONE when the followed object is replaced by a new generation', async () => {
    const { name, stream, written, cli } = await following('cat-grpc-replaced');
    const followed = ctx.server.getObject(BUCKET, name)?.resource.generation;
    const replacement = ctx.server.putObject(BUCKET, name, Buffer.from('another object\n')).resource.generation;
    const exit = await cli.exited;
    stream.destroy();
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stdout).toBe(written);
    expect(exit.stderr).toBe(
      `gcs-stream: error: gs://${BUCKET}/${name} generation ${followed} was replaced by generation ${replacement} while it ` +
        `was read, after ${written.length} bytes were delivered; read the new generation from its start (ERR_GCS_READ_OBJECT_GONE)\n`,
    );
  });

  it('--follow --json stops with ERR_GCS_STREAM_GONE when the followed object is deleted, saying how many bytes it printed', async () => {
    const { name, stream, written, cli } = await following('cat-deleted', true);
    const generation = ctx.server.getObject(BUCKET, name)?.resource.generation;
    expect(ctx.server.deleteObject(BUCKET, name)).toBe(true);
    const exit = await cli.exited;
    stream.destroy();
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stdout).toBe(written);
    // One line: a 404 during --follow is not retried.
    expect(exit.stderr).toBe(
      `gcs-stream: error: gs://${BUCKET}/${name} was deleted while it was being read (generation ${generation}); ` +
        `${written.length} bytes printed (ERR_GCS_STREAM_GONE)\n`,
    );
  });

  it('--follow --json stops with ERR_GCS_STREAM_GONE when the followed object is replaced by a new generation', async () => {
    const { name, stream, written, cli } = await following('cat-replaced', true);
    const followed = ctx.server.getObject(BUCKET, name)?.resource.generation;
    const replacement = ctx.server.putObject(BUCKET, name, Buffer.from('another object\n')).resource.generation;
    const exit = await cli.exited;
    stream.destroy();
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stdout).toBe(written);
    expect(exit.stderr).toBe(
      `gcs-stream: error: gs://${BUCKET}/${name} was replaced by generation ${replacement} while generation ${followed} ` +
        `was being read; ${written.length} bytes printed (ERR_GCS_STREAM_GONE)\n`,
    );
  });

  it('a missing object exits 1 with a clear message; a bad URL exits 2', async () => {
    const missing = await catCli(['--follow', '--json', `gs://${BUCKET}/${uniqueName('cat-missing')}`]).exited;
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/gs:\/\/test-bucket\/.*cat-missing.* does not exist \(ERR_GCS_STREAM_NOT_FOUND\)/);
    expect(missing.stdout).toBe('');
    const overGrpc = await catCli(['--follow', `gs://${BUCKET}/${uniqueName('cat-missing')}`]).exited;
    expect(overGrpc.code).toBe(1);
    expect(overGrpc.stderr).toMatch(
      /gs:\/\/test-bucket\/.*cat-missing.* does not exist; nothing was read.*\(ERR_GCS_READ_OBJECT_NOT_FOUND\)\n$/,
    );
    expect(overGrpc.stdout).toBe('');
    const usage = await catCli(['not-a-url']).exited;
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/"not-a-url" is not a source: use gs:\/\/BUCKET\/OBJECT/);
  });
});

/** The request log entries of `name` where a fault fired, described. */
function faultsOn(name: string): string[] {
  return ctx.server.requests.filter((record) => record.object === name && record.fault !== undefined).map((record) => record.fault ?? '');
}

describe('cat retries', () => {
  it('--follow over gRPC: read streams broken part-way resume where the output stopped', async () => {
    const name = uniqueName('cat-grpc-break');
    const { stream, written: first } = await appendable(name, lines(0, 10));
    const cli = catCli(['--follow', '--interval', '20ms', `gs://${BUCKET}/${name}`]);
    await until(
      () => cli.stdout() === first,
      'the first bytes on stdout',
      [[cli.child.stdout, 'data']],
      () => cli.stderr(),
    );
    ctx.server.grpc.inject({ match: { method: 'read', object: name, offset: first.length + 7 }, action: { type: 'break' } });
    ctx.server.grpc.inject({
      match: { method: 'read', object: name, offset: first.length + 9 },
      action: { type: 'status', status: 'UNAVAILABLE' },
    });
    const rest = lines(10, 200);
    stream.end(rest);
    await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toBe(first + rest);
    const faults = ctx.server.grpc.reads.streams.filter((s) => s.object === name && s.fault !== undefined).map((s) => s.fault);
    expect(faults).toEqual(['break', 'status UNAVAILABLE']);
  });

  it('a media read reset part-way resumes from the first byte not printed: every byte is printed once', async () => {
    const name = uniqueName('cat-reset');
    const text = lines(0, 60_000); // ~3.5 MiB: two ranged reads
    ctx.server.putObject(BUCKET, name, Buffer.from(text));
    ctx.server.inject({ match: { kind: 'metadata', object: name }, action: { type: 'reset' } });
    ctx.server.inject({ match: { kind: 'media', object: name, nth: 0 }, action: { type: 'reset', afterBytes: 100_000 } });
    ctx.server.inject({ match: { kind: 'media', object: name, offset: RANGE_BYTES + 10 }, action: { type: 'reset', afterBytes: 1 } });
    const exit = await catCli([`gs://${BUCKET}/${name}`]).exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout.length).toBe(text.length);
    expect(exit.stdout === text).toBe(true);
    expect(faultsOn(name)).toEqual(['reset', 'reset after 100000', 'reset after 1']);
    // Each failure came after progress: every retry is the first of its streak.
    expect(exit.stderr.match(/; retry 1 in /g)?.length, exit.stderr).toBe(3);
    expect(exit.stderr).toMatch(
      /reading gs:\/\/test-bucket\/.*cat-reset.* from byte 2097152 failed: ECONNRESET \(connection to 127\.0\.0\.1:\d+\); retry 1 in/,
    );
  });

  it('--follow --json: a read of new bytes broken part-way resumes where the output stopped', async () => {
    const name = uniqueName('cat-follow-reset');
    const { stream, written: first } = await appendable(name, lines(0, 10));
    const cli = catCli(['--follow', '--json', '--interval', '20ms', `gs://${BUCKET}/${name}`]);
    await until(
      () => cli.stdout() === first,
      'the first bytes on stdout',
      [[cli.child.stdout, 'data']],
      () => cli.stderr(),
    );
    ctx.server.inject({ match: { kind: 'media', object: name, offset: first.length }, action: { type: 'reset', afterBytes: 7 } });
    const rest = lines(10, 200);
    stream.end(rest);
    await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toBe(first + rest);
    expect(faultsOn(name)).toEqual(['reset after 7']);
  });

  it('a 503 with Retry-After on the metadata is retried after the time the server asked for', async () => {
    const name = uniqueName('cat-503');
    const text = lines(0, 100);
    ctx.server.putObject(BUCKET, name, Buffer.from(text));
    ctx.server.inject({ match: { kind: 'metadata', object: name }, action: { type: 'status', status: 503, retryAfterSeconds: 2 } });
    const exit = await catCli([`gs://${BUCKET}/${name}`]).exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toBe(text);
    // Full jitter alone waits less than 1 s before the first retry: 2.0 s is the server's Retry-After.
    expect(exit.stderr).toMatch(/reading the metadata of .*cat-503.* failed with HTTP 503 .*; retry 1 in 2\.0s\n$/);
    expect(faultsOn(name)).toEqual(['status 503 before']);
  });

  it('a 403 is not retried: exit 1 at once, saying what was refused and how many bytes were printed', async () => {
    const name = uniqueName('cat-403');
    const text = lines(0, 60_000);
    ctx.server.putObject(BUCKET, name, Buffer.from(text));
    ctx.server.inject({ match: { kind: 'media', object: name, nth: 1, times: Infinity }, action: { type: 'status', status: 403 } });
    const exit = await catCli(['--follow', '--json', `gs://${BUCKET}/${name}`]).exited;
    expect(exit.code).toBe(1);
    expect(exit.stdout === text.slice(0, RANGE_BYTES)).toBe(true);
    expect(exit.stderr).toBe(
      `gcs-stream: error: reading gs://${BUCKET}/${name} was refused with HTTP 403 (permission denied: the caller needs ` +
        `storage.objects.get on the bucket), not retried: Injected fault: HTTP 403.; ${RANGE_BYTES} bytes printed (ERR_GCS_STREAM_READ)\n`,
    );
    expect(faultsOn(name)).toEqual(['status 403 before']);
  });
});
