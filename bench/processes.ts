/**
 * The harness's child processes: the server(s) and one process per run. Every child is tracked and killed if the
 * harness exits or is interrupted; children also exit by themselves when their stdin closes (the harness died).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildRequest, ChildResult } from './child.js';
import type { ServerStats } from './server.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** The package root: `--import tsx` resolves from here. */
export const ROOT_DIR = dirname(BENCH_DIR);

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.stderr.write(`\nbench: ${signal}, children killed\n`);
    process.exit(130);
  });
}

/** Starts `node ...args`; tracked until it exits. */
function startNode(args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT_DIR,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Keeps the last `limit` characters of a stream, for error messages. */
function tail(stream: NodeJS.ReadableStream | null, limit = 2000): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (piece: string) => {
    text = (text + piece).slice(-limit);
  });
  return () => text.trim();
}

/** Waits for a child to exit; SIGKILLs it after `timeoutMs`. Resolves with how it ended. */
function exited(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
}

/** A local GCS server (`bench/server.ts`) in its own process. */
export class ServerProcess {
  readonly url: string;
  readonly latencyMs: number;
  readonly #child: ChildProcess;
  readonly #lines: Interface;
  readonly #stderr: () => string;
  readonly #waiting: Array<(line: string | undefined) => void> = [];

  private constructor(child: ChildProcess, lines: Interface, stderr: () => string, url: string, latencyMs: number) {
    this.#child = child;
    this.#lines = lines;
    this.#stderr = stderr;
    this.url = url;
    this.latencyMs = latencyMs;
    lines.on('line', (line) => this.#waiting.shift()?.(line));
    lines.once('close', () => {
      for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    });
  }

  /** Starts a server and waits for its URL. */
  static async start(latencyMs: number, connectionBytesPerSecond?: number, timeoutMs = 30_000): Promise<ServerProcess> {
    const limit = connectionBytesPerSecond === undefined ? [] : ['--connection-bytes-per-second', String(connectionBytesPerSecond)];
    const child = startNode(['--import', 'tsx', join(BENCH_DIR, 'server.ts'), '--latency-ms', String(latencyMs), ...limit]);
    const stderr = tail(child.stderr);
    if (child.stdout === null) throw new Error('the server has no stdout');
    const lines = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolve, reject) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        fail(new Error(`the server exited (${String(code ?? signal)}): ${stderr()}`));
      };
      const timer = setTimeout(() => fail(new Error(`the server printed no URL within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.kill('SIGKILL');
        reject(error);
      };
      lines.once('line', (line) => {
        if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(line))
          return fail(new Error(`the server printed ${JSON.stringify(line)} instead of its URL`));
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(line);
      });
      child.once('exit', onExit);
    });
    return new ServerProcess(child, lines, stderr, url, latencyMs);
  }

  async #ask(command: object, timeoutMs = 30_000): Promise<unknown> {
    const stdin = this.#child.stdin;
    if (stdin === null || !this.alive) throw new Error(`the server is gone: ${this.#stderr()}`);
    const answer = new Promise<string | undefined>((resolve) => this.#waiting.push(resolve));
    stdin.write(`${JSON.stringify(command)}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the server did not answer ${JSON.stringify(command)} within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const line = await Promise.race([answer, timeout]);
      if (line === undefined) throw new Error(`the server closed its output: ${this.#stderr()}`);
      return JSON.parse(line);
    } finally {
      clearTimeout(timer);
    }
  }

  /** False once the process has exited. */
  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts counting the server's CPU for the next run. */
  async mark(): Promise<void> {
    await this.#ask({ op: 'mark' });
  }

  /** What the server saw of object `name` (or of each of several) since the last stats; deletes the object(s). */
  async stats(bucket: string, name: string | readonly string[]): Promise<ServerStats> {
    const command = typeof name === 'string' ? { op: 'stats', bucket, name } : { op: 'stats', bucket, names: name };
    const reply = (await this.#ask(command)) as ServerStats | { op: 'error'; error: string };
    if (reply.op !== 'stats') throw new Error(`the server refused stats: ${reply.error}`);
    return reply;
  }

  /** Closes its stdin (it then exits); kills it if it lingers. */
  async close(): Promise<void> {
    if (!this.alive) return;
    const done = exited(this.#child, 5_000);
    this.#child.stdin?.end();
    this.#lines.close();
    await done;
  }
}

/**
 * Runs one contender in a fresh `node <childScript> JSON` process (`childScript`: `child.js` of the transpiled
 * tree); a crash, a timeout or garbage on stdout becomes `{ ok: false }`.
 */
export async function runChild(childScript: string, request: ChildRequest, timeoutMs: number): Promise<ChildResult> {
  const child = startNode([childScript, JSON.stringify(request)]);
  const stdout = tail(child.stdout, 64 * 1024);
  const stderr = tail(child.stderr);
  const { code, signal, timedOut } = await exited(child, timeoutMs);
  const last = stdout().split('\n').pop() ?? '';
  let parsed: ChildResult | undefined;
  try {
    parsed = JSON.parse(last) as ChildResult;
  } catch {
    parsed = undefined;
  }
  if (timedOut)
    return { ok: false, contender: request.contender, error: `timed out after ${Math.round(timeoutMs / 1000)} s and was killed` };
  if (parsed !== undefined && typeof parsed === 'object' && 'ok' in parsed) {
    if (parsed.ok && code !== 0)
      return { ok: false, contender: parsed.contender, error: `reported success but exited with ${String(code ?? signal)}` };
    return parsed;
  }
  const why = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`;
  return { ok: false, contender: request.contender, error: `${why} without a result: ${stderr() || last || '(no output)'}` };
}
