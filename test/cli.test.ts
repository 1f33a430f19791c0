import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTsx, until, type Exit, type RunningChild } from './child.js';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCheckpointTarget, readCheckpointFile } from '../src/cli/checkpoint-file.js';
import { parseGsUrl } from '../src/cli/gs-url.js';
import { parseSize } from '../src/cli/parse-size.js';
import { formatBarLine, formatBytes, formatDuration, formatProgressLine, type ProgressSnapshot } from '../src/cli/progress.js';
import { checkSourceStart, planSource } from '../src/cli/source.js';
import { collectMetadata, parseCount } from '../src/cli/upload-options.js';
import { UsageError } from '../src/cli/usage-error.js';
import type { UploadCheckpoint } from '../src/index.js';
import { BUCKET, K256, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-stream-cli-'));
const SIZE = 4 * K256 + 12_345;
const DATA = randomBytes(SIZE);
const FILE = join(TMP, 'data.bin');
writeFileSync(FILE, DATA);

afterAll(() => rmSync(TMP, { recursive: true, force: true }));

type Cli = RunningChild;

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NO_WARNINGS: '1' };
  delete env.STORAGE_EMULATOR_HOST;
  return env;
}

/** Starts `gcs-stream` from source (tsx), so no build is needed. */
function startCli(args: string[], env: Record<string, string> = {}): Cli {
  return startTsx(CLI, args, { cwd: ROOT, env });
}

/** Runs `gcs-stream` to completion with `input` on stdin (empty if not given). */
function runCli(args: string[], input?: Buffer, env?: Record<string, string>): Promise<Exit> {
  const cli = startCli(args, env);
  cli.child.stdin.end(input);
  return cli.exited;
}

function readCheckpoint(path: string): UploadCheckpoint | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as UploadCheckpoint;
  } catch {
    return undefined;
  }
}

let counter = 0;
function uniqueName(label: string): string {
  counter += 1;
  return `cli/${label}-${process.pid}-${counter}`;
}

const dest = (name: string): string => `gs://${BUCKET}/${name}`;
const quote = (arg: string): string => `'${arg.replaceAll("'", "'\\''")}'`;
const endpoint = (): string[] => ['--endpoint', ctx.server.url];

function stored(name: string): Buffer | undefined {
  return ctx.server.getObject(BUCKET, name)?.data;
}

/**
 * Starts an upload from stdin with checkpoints, feeds it the first `upTo` bytes, waits until the checkpoint file
 * records every whole chunk of them, and kills the process without warning: the session stays open. `upTo` must
 * not be a multiple of the chunk size: a full chunk with nothing after it yet may be the last one, and is held.
 */
async function crashedUpload(name: string, upTo: number): Promise<{ checkpointFile: string; checkpoint: UploadCheckpoint }> {
  const checkpointFile = join(TMP, `${name.replaceAll('/', '_')}.checkpoint.json`);
  const cli = startCli(['cp', '-', dest(name), ...endpoint(), '--chunk-size', '256KiB', '--checkpoint', checkpointFile, '--quiet']);
  cli.child.stdin.write(DATA.subarray(0, upTo));
  const whole = Math.floor(upTo / K256) * K256;
  // The file is written after the commit: wake on changes in its directory.
  const watcher = watch(TMP);
  try {
    await until(
      () => readCheckpoint(checkpointFile)?.bytesCommitted === whole,
      `a checkpoint at ${whole}`,
      [
        [watcher, 'change'],
        [ctx.server.activity, 'change'],
      ],
      () => ({
        checkpoint: readCheckpoint(checkpointFile),
        stderr: cli.stderr(),
      }),
    );
  } finally {
    watcher.close();
  }
  cli.child.kill('SIGKILL');
  const exit = await cli.exited;
  expect(exit.signal).toBe('SIGKILL');
  expect(stored(name)).toBeUndefined();
  expect(statSync(checkpointFile).mode & 0o777).toBe(0o600); // it holds the session URI
  expect(readdirSync(TMP).filter((file) => file.endsWith('.tmp'))).toEqual([]); // written by rename
  return { checkpointFile, checkpoint: readCheckpoint(checkpointFile)! };
}

describe('gcs-stream cp', () => {
  it('uploads a file byte for byte; --json prints the summary; plain progress lines off a terminal', async () => {
    const name = uniqueName('file');
    const exit = await runCli([
      'cp',
      FILE,
      dest(name),
      ...endpoint(),
      '--chunk-size',
      '256KiB',
      '--buffer-chunks',
      '3',
      '--validation',
      'both',
      '--json',
      '--content-type',
      'application/x-test',
      '--metadata',
      'origin=cli',
      '--metadata',
      'note=a=b',
      '--cache-control',
      'no-store',
      '--content-encoding',
      'identity',
      '--content-disposition',
      'attachment',
    ]);
    expect(exit.code, exit.stderr).toBe(0);
    const object = ctx.server.getObject(BUCKET, name)!;
    expect(object.data.equals(DATA)).toBe(true);
    expect(object.resource).toMatchObject({
      contentType: 'application/x-test',
      metadata: { origin: 'cli', note: 'a=b' },
      cacheControl: 'no-store',
      contentEncoding: 'identity',
      contentDisposition: 'attachment',
    });
    const summary = JSON.parse(exit.stdout) as Record<string, unknown>;
    expect(summary).toEqual({
      bucket: BUCKET,
      name,
      size: SIZE,
      generation: object.resource.generation,
      crc32c: object.resource.crc32c,
      md5Hash: object.resource.md5Hash,
      seconds: expect.any(Number),
      retries: 0,
    });
    expect(exit.stderr).toMatch(
      new RegExp(`^gcs-stream: uploaded 1\\.0 MiB to gs://${BUCKET}/${name} in .*, 0 retries, generation \\d+$`, 'm'),
    );
    expect(exit.stderr).not.toContain('\u001b['); // no terminal control sequences in logs
    // A regular file's size is declared up front (a file that changes while it is read fails instead).
    expect(ctx.server.listSessions().find((s) => s.name === name)?.declaredSize).toBe(SIZE);
  });

  it('uploads stdin (endpoint from STORAGE_EMULATOR_HOST); --quiet prints nothing', async () => {
    const name = uniqueName('stdin');
    const exit = await runCli(['cp', '-', dest(name), '--chunk-size', '256K', '--quiet'], DATA, {
      STORAGE_EMULATOR_HOST: ctx.server.url,
    });
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toBe('');
    expect(exit.stdout).toBe('');
    expect(stored(name)?.equals(DATA)).toBe(true);
  });

  it('an empty stdin makes an empty object', async () => {
    const name = uniqueName('empty');
    const exit = await runCli(['cp', '-', dest(name), ...endpoint(), '--json']);
    expect(exit.code, exit.stderr).toBe(0);
    expect(stored(name)?.length).toBe(0);
    expect(JSON.parse(exit.stdout)).toMatchObject({ size: 0, crc32c: 'AAAAAA==' });
  });

  it('counts and reports retries', async () => {
    const name = uniqueName('retry');
    ctx.server.inject({ match: { kind: 'chunk', object: name }, action: { type: 'status', status: 503 } });
    const exit = await runCli(['cp', FILE, dest(name), ...endpoint(), '--chunk-size', '256KiB', '--json']);
    expect(exit.code, exit.stderr).toBe(0);
    expect(JSON.parse(exit.stdout)).toMatchObject({ retries: 1 });
    expect(exit.stderr).toMatch(/^gcs-stream: .*HTTP 503.* \(ERR_GCS_UPLOAD_HTTP_STATUS\); retry 1 in \d+\.\ds$/m);
    expect(stored(name)?.equals(DATA)).toBe(true);
  });

  it('exit 1 on an upload failure: one line with the message and the code, no object', async () => {
    const name = uniqueName('denied');
    ctx.server.inject({ match: { kind: 'open', object: name }, action: { type: 'status', status: 403 } });
    const exit = await runCli(['cp', FILE, dest(name), ...endpoint(), '--json']);
    expect(exit.code).toBe(1);
    expect(exit.stdout).toBe('');
    const lines = exit.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gcs-stream: error: .*HTTP 403: permission denied.* \(ERR_GCS_UPLOAD_PERMISSION_DENIED\)$/);
    expect(stored(name)).toBeUndefined();
  });

  it('exit 1 when --if-generation-match does not hold; the existing object is untouched', async () => {
    const name = uniqueName('precondition');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('keep me'));
    const exit = await runCli(['cp', FILE, dest(name), ...endpoint(), '--if-generation-match', '0', '--quiet']);
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('(ERR_GCS_UPLOAD_PRECONDITION_FAILED)');
    expect(ctx.server.getObject(BUCKET, name)?.resource.generation).toBe(existing.resource.generation);
  });

  it('exit 2 on usage errors, before any session is opened', async () => {
    const foreign = join(TMP, 'foreign.checkpoint.json');
    const checkpoint: UploadCheckpoint = {
      version: 1,
      uploadUri: `${ctx.server.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&upload_id=x`,
      bucket: BUCKET,
      name: 'another-object',
      bytesCommitted: 0,
      crc32c: 0,
    };
    writeFileSync(foreign, JSON.stringify(checkpoint));
    // One case per path to exit code 2: commander (parsers, choices, arity, unknown options), the CLI's own checks
    // (UsageError) and the library's InvalidArgumentError. The pure parsers are covered in-process below.
    const cases: Array<[string, string[], RegExp]> = [
      ['bad chunk size unit', ['cp', FILE, dest('x'), '--chunk-size', '12XB'], /argument '12XB' is invalid/],
      [
        'unaligned chunk size',
        ['cp', FILE, dest('x'), '--chunk-size', '1000000'],
        /chunkSize must be a positive multiple of 262144.*ERR_GCS_UPLOAD_INVALID_ARGUMENT/,
      ],
      ['not a gs:// URL', ['cp', FILE, 's3://bucket/x'], /is not a destination: use gs:\/\/BUCKET\/OBJECT \(ERR_GCS_STREAM_USAGE\)/],
      ['missing source', ['cp'], /missing required argument 'source'/],
      ['nonexistent source file', ['cp', join(TMP, 'nope.bin'), dest('x')], /source .*nope\.bin: no such file/],
      ['unknown validation', ['cp', FILE, dest('x'), '--validation', 'sha1'], /Allowed choices are crc32c, md5, both, none/],
      ['--source-offset without --resume', ['cp', FILE, dest('x'), '--source-offset', 'checkpoint'], /only applies with --resume/],
      [
        'checkpoint of another object',
        ['cp', FILE, dest('x'), '--resume', foreign],
        /checkpoint is for gs:\/\/test-bucket\/another-object/,
      ],
    ];
    const sessionsBefore = ctx.server.sessionCount;
    const exits: Exit[] = [];
    // Four at a time: each child is a Node.js process compiling TypeScript; more would only thrash two cores.
    for (let i = 0; i < cases.length; i += 4) {
      exits.push(
        ...(await Promise.all(cases.slice(i, i + 4).map(([, args]) => runCli([...args, ...(args.length > 2 ? endpoint() : [])])))),
      );
    }
    cases.forEach(([label, , message], i) => {
      const exit = exits[i]!;
      expect({ label, code: exit.code }).toEqual({ label, code: 2 });
      expect(exit.stderr, label).toMatch(message);
      expect(exit.stdout, label).toBe('');
    });
    expect(ctx.server.sessionCount).toBe(sessionsBefore);
  });

  it('--help and --version exit 0', async () => {
    const [help, version] = await Promise.all([runCli(['cp', '--help']), runCli(['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: gcs-stream cp [options] <source> <destination>');
    expect(help.stdout).toContain('--checkpoint <file>');
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('SIGINT cancels the session, creates no object and exits 130 (periodic progress lines meanwhile)', async () => {
    const name = uniqueName('sigint');
    const cli = startCli(['cp', '-', dest(name), ...endpoint(), '--chunk-size', '256KiB']);
    cli.child.stdin.write(DATA.subarray(0, 2 * K256 + 1000)); // the pipe stays open: more input could follow
    const session = () => ctx.server.listSessions().find((s) => s.name === name);
    const detail = () => ({ session: session(), stderr: cli.stderr(), exit: cli.child.exitCode });
    await until(() => (session()?.bytesCommitted ?? 0) >= 2 * K256, 'two committed chunks', [[ctx.server.activity, 'change']], detail);
    await until(
      () => /^gcs-stream: 512\.0 KiB committed, .* 0 retries, .* elapsed$/m.test(cli.stderr()),
      'a progress line',
      [[cli.child.stderr, 'data']],
      detail,
    );
    cli.child.kill('SIGINT');
    const exit = await cli.exited;
    expect(exit.code, exit.stderr).toBe(130);
    expect(exit.stderr).toContain('the upload was cancelled and no object was created');
    expect(session()?.state).toBe('cancelled');
    expect(stored(name)).toBeUndefined();
  });

  it('SIGTERM does the same and exits 143', async () => {
    const name = uniqueName('sigterm');
    const cli = startCli(['cp', '-', dest(name), ...endpoint(), '--chunk-size', '256KiB', '--quiet']);
    cli.child.stdin.write(DATA.subarray(0, K256 + 1));
    const session = () => ctx.server.listSessions().find((s) => s.name === name);
    await until(
      () => (session()?.bytesCommitted ?? 0) >= K256,
      'a committed chunk',
      [[ctx.server.activity, 'change']],
      () => ({ session: session(), stderr: cli.stderr() }),
    );
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    expect(exit.code).toBe(143);
    expect(exit.stderr).toBe('');
    expect(session()?.state).toBe('cancelled');
    expect(stored(name)).toBeUndefined();
  });

  it('--resume with the file: reads it again from the start, the library skips what the session has', async () => {
    const name = uniqueName('resume-file');
    const { checkpointFile, checkpoint } = await crashedUpload(name, 2 * K256 + 500);
    expect(checkpoint.bytesCommitted).toBe(2 * K256);
    const exit = await runCli(['cp', FILE, dest(name), ...endpoint(), '--chunk-size', '256KiB', '--resume', checkpointFile, '--json']);
    expect(exit.code, exit.stderr).toBe(0);
    expect(stored(name)?.equals(DATA)).toBe(true);
    expect(ctx.server.listSessions().filter((s) => s.name === name)).toHaveLength(1); // no second session
    // The --resume file (here without --checkpoint) names a finished session: it goes too.
    expect(existsSync(checkpointFile)).toBe(false);
  });

  it('--resume with the file and --source-offset checkpoint: reads from the checkpoint offset', async () => {
    const name = uniqueName('resume-offset');
    const { checkpointFile } = await crashedUpload(name, 3 * K256 + 100);
    const exit = await runCli([
      'cp',
      FILE,
      dest(name),
      ...endpoint(),
      '--chunk-size',
      '256KiB',
      '--resume',
      checkpointFile,
      '--source-offset',
      'checkpoint',
    ]);
    expect(exit.code, exit.stderr).toBe(0);
    expect(stored(name)?.equals(DATA)).toBe(true);
  });

  it('--resume with stdin: the input continues at the checkpoint offset; the --checkpoint file goes once it succeeded', async () => {
    const name = uniqueName('resume-stdin');
    const { checkpointFile, checkpoint } = await crashedUpload(name, K256 + 7);
    const exit = await runCli(
      ['cp', '-', dest(name), ...endpoint(), '--chunk-size', '256KiB', '--resume', checkpointFile, '--checkpoint', checkpointFile],
      DATA.subarray(checkpoint.bytesCommitted),
    );
    expect(exit.code, exit.stderr).toBe(0);
    expect(stored(name)?.equals(DATA)).toBe(true);
    expect(existsSync(checkpointFile)).toBe(false); // the session is finished: nothing to resume
  });

  it('--resume with a different file is refused (exit 1), nothing finalized', async () => {
    const name = uniqueName('resume-other');
    const { checkpointFile } = await crashedUpload(name, 2 * K256 + 100);
    const other = join(TMP, 'other.bin');
    writeFileSync(other, randomBytes(SIZE));
    const exit = await runCli(['cp', other, dest(name), ...endpoint(), '--chunk-size', '256KiB', '--resume', checkpointFile]);
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('(ERR_GCS_UPLOAD_SOURCE_MISMATCH)');
    expect(stored(name)).toBeUndefined();
  });

  it('Ctrl-C on a shell pipeline, which kills the producer too, never finalizes a truncated object', async () => {
    // The producer's death closes the pipe while the same SIGINT is pending in gcs-stream: if the end of input won,
    // a truncated object would be finalized. Three at once, as the race does not lose every time.
    const runs = [1, 2, 3].map(() => {
      const name = uniqueName('pgrp');
      const cli = [process.execPath, '--import', 'tsx', CLI, 'cp', '-', dest(name), ...endpoint(), '--chunk-size', '256KiB', '--quiet'];
      // One producer process that writes, then lingers: alive whenever the SIGINT comes (with `head; sleep` a loaded
      // machine could deliver it between the two, and the pipe then stayed open for the whole sleep).
      const producer = [
        process.execPath,
        '-e',
        `process.stdout.write(Buffer.alloc(${2 * K256 + 1000}, 7), () => setTimeout(() => {}, 30_000))`,
      ];
      const script = `${producer.map(quote).join(' ')} | ${cli.map(quote).join(' ')}; echo "exit=$?"`;
      // detached: a process group of its own, like a shell job, to signal as the terminal would.
      const child = spawn('bash', ['-c', script], { cwd: ROOT, env: childEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
      const closed = new Promise<string>((resolve) => child.on('close', () => resolve(output)));
      return { name, child, closed, session: () => ctx.server.listSessions().find((s) => s.name === name) };
    });
    try {
      for (const run of runs) {
        await until(
          () => (run.session()?.bytesCommitted ?? 0) >= 2 * K256,
          'two committed chunks',
          [[ctx.server.activity, 'change']],
          run.session,
        );
      }
      for (const run of runs) process.kill(-run.child.pid!, 'SIGINT');
      for (const run of runs) {
        expect(await run.closed).toBe('exit=130\n');
        expect(run.session()?.state).toBe('cancelled');
        expect(stored(run.name)).toBeUndefined();
      }
    } finally {
      for (const run of runs) {
        try {
          process.kill(-run.child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasScript)('draws a progress bar on a terminal (under script(1))', async () => {
    const name = uniqueName('tty');
    const command = [process.execPath, '--import', 'tsx', CLI, 'cp', FILE, dest(name), ...endpoint(), '--chunk-size', '256KiB']
      .map(quote)
      .join(' ');
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, output).toBe(0);
    expect(output).toMatch(/uploading \u2588+ 100% \| 1\.0 MiB \/ 1\.0 MiB \| .*\/s \| ETA 0s \| 0 retries/);
    expect(output).toContain('\u001b['); // redrawn in place
    expect(output).toMatch(/gcs-stream: uploaded 1\.0 MiB/);
    expect(stored(name)?.equals(DATA)).toBe(true);
  });
});

describe('CLI helpers', () => {
  it('parses sizes in bytes, K/KiB, M/MiB, G/GiB', () => {
    expect(parseSize('262144')).toBe(262144);
    expect(parseSize('256KiB')).toBe(K256);
    expect(parseSize('256k')).toBe(K256);
    expect(parseSize('16MiB')).toBe(16 * 1024 * 1024);
    expect(parseSize('16M')).toBe(16 * 1024 * 1024);
    expect(parseSize('1.5 MiB')).toBe(1.5 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('2g')).toBe(2 * 1024 ** 3);
    expect(parseSize('512B')).toBe(512);
    for (const bad of ['', 'MiB', '16MB', '-1M', '0', '0.5B', '1e6', '16 Mi', 'abc']) {
      expect(() => parseSize(bad), bad).toThrow(/size|whole number/);
    }
  });

  it('splits gs:// URLs verbatim', () => {
    expect(parseGsUrl('gs://b/o', 'destination')).toEqual({ bucket: 'b', name: 'o' });
    expect(parseGsUrl('gs://my.bucket/a/b c/#?.txt', 'source')).toEqual({ bucket: 'my.bucket', name: 'a/b c/#?.txt' });
    expect(parseGsUrl('gs://b//leading', 'destination')).toEqual({ bucket: 'b', name: '/leading' });
    for (const bad of ['gs://', 'gs:///o', 'http://b/o', 'b/o']) {
      expect(() => parseGsUrl(bad, 'source'), bad).toThrow(/is not a source: use gs:\/\/BUCKET\/OBJECT/);
    }
    // A bucket alone is neither a source nor a destination: the message says what it names.
    for (const bucketOnly of ['gs://b', 'gs://b/']) {
      expect(() => parseGsUrl(bucketOnly, 'source'), bucketOnly).toThrow(/names the bucket b, not an object: use gs:\/\/BUCKET\/OBJECT/);
    }
  });

  it('refuses unusable sources and checkpoint files with usage errors', () => {
    expect(() => planSource(TMP)).toThrow(/is a directory/);
    expect(() => planSource(join(TMP, 'nope.bin'))).toThrow(/no such file/);
    expect(planSource(FILE)).toEqual({ path: FILE, size: SIZE });
    expect(planSource('-')).toEqual({ path: undefined, size: undefined });
    expect(() => checkSourceStart(planSource(FILE), SIZE + 1)).toThrow(/fewer than the/);
    const garbage = join(TMP, 'garbage.json');
    writeFileSync(garbage, '{ not json');
    expect(() => readCheckpointFile(garbage)).toThrow(UsageError);
    expect(() => readCheckpointFile(garbage)).toThrow(/not valid JSON/);
    expect(() => readCheckpointFile(join(TMP, 'none.json'))).toThrow(/cannot read the checkpoint file \(ENOENT\)/);
    expect(() => checkCheckpointTarget(join(TMP, 'no', 'such', 'dir.json'))).toThrow(/does not exist/);
    expect(() => parseCount('0')).toThrow(/positive integer/);
    expect(parseCount('3')).toBe(3);
  });

  it('collects repeated --metadata', () => {
    expect(collectMetadata('k=v=w', collectMetadata('a=', undefined))).toEqual({ a: '', k: 'v=w' });
    expect(collectMetadata('a=2', { a: '1' })).toEqual({ a: '2' });
    expect(() => collectMetadata('=v', undefined)).toThrow(/key=value/);
  });

  it('formats bytes, durations, plain lines and the bar line', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(1022.8748376785537)).toBe('1023 B'); // a rate
    expect(formatBytes(8 * 1024 ** 3)).toBe('8.0 GiB');
    expect(formatDuration(0.42)).toBe('0.4s');
    expect(formatDuration(42.2)).toBe('42s');
    expect(formatDuration(65)).toBe('1m05s');
    expect(formatDuration(3725)).toBe('1h02m');

    const known: ProgressSnapshot = {
      bytesCommitted: 3 * 1024 ** 2,
      bytesAccepted: 3 * 1024 ** 2,
      bytesAtStart: 1024 ** 2,
      totalBytes: 4 * 1024 ** 2,
      elapsedMs: 2000,
      retries: 1,
    };
    expect(formatProgressLine(known)).toBe('gcs-stream: 3.0 MiB of 4.0 MiB committed (75%), 1.0 MiB/s, ETA 1.0s, 1 retry, 2.0s elapsed');
    expect(formatBarLine(known, '###-')).toBe('uploading ###- 75% | 3.0 MiB / 4.0 MiB | 1.0 MiB/s | ETA 1.0s | 1 retry');

    const unknown: ProgressSnapshot = {
      bytesCommitted: 0,
      bytesAccepted: 0,
      bytesAtStart: 0,
      totalBytes: undefined,
      elapsedMs: 90_000,
      retries: 2,
    };
    expect(formatProgressLine(unknown)).toBe('gcs-stream: 0 B committed, 0 B/s, 2 retries, 1m30s elapsed');
    expect(formatBarLine(unknown, 'ignored')).toBe('uploading | 0 B committed | 0 B/s | 2 retries | 1m30s');
    // A source ahead of GCS: what a crash now could lose is shown beside what is committed.
    const ahead = { ...unknown, bytesCommitted: 512 * 1024, bytesAccepted: 700 * 1024 };
    expect(formatProgressLine(ahead)).toBe('gcs-stream: 512.0 KiB committed, 700.0 KiB accepted, 5.7 KiB/s, 2 retries, 1m30s elapsed');
    expect(formatBarLine(ahead, 'ignored')).toBe('uploading | 512.0 KiB committed, 700.0 KiB accepted | 5.7 KiB/s | 2 retries | 1m30s');
    expect(formatProgressLine({ ...known, bytesCommitted: known.bytesAtStart })).toContain('ETA --');
    expect(formatProgressLine({ ...unknown, totalBytes: 0 })).toContain('0 B of 0 B committed (100%)');
  });
});
