import type { EventEmitter } from 'node:events';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_BUNDLE } from './global-setup.js';

const CLI_SOURCE = join(fileURLToPath(new URL('..', import.meta.url)), 'src', 'cli.ts');

/** How a child process ended, with everything it printed. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running child process and its output so far. */
export interface RunningChild {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

/**
 * Runs a TypeScript file with `node --import tsx` (no build needed), with `nodeArgs` before it (`--expose-gc`); the CLI
 * (`src/cli.ts`) runs from the bundle of these sources that test/global-setup.ts built.
 * STORAGE_EMULATOR_HOST is passed on only when `env` sets it, so that a developer's own setting cannot redirect a test.
 */
export function startTsx(
  file: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; nodeArgs?: string[] },
): RunningChild {
  // The CLI runs from the bundle test/global-setup.ts built from these sources at the start of the run.
  if (file === CLI_SOURCE && existsSync(CLI_BUNDLE)) return startNode([...(options.nodeArgs ?? []), CLI_BUNDLE, ...args], options);
  return startNode([...(options.nodeArgs ?? []), '--import', 'tsx', file, ...args], options);
}

/** Runs `script` (TypeScript, an ES module) with `node --import tsx --eval`; resolves once it ended. */
export function runTsxScript(script: string, options: { cwd: string; env?: Record<string, string> }): Promise<Exit> {
  const running = startNode(['--import', 'tsx', '--input-type=module', '--eval', script], options);
  running.child.stdin.end();
  return running.exited;
}

function startNode(args: string[], options: { cwd: string; env?: Record<string, string> }): RunningChild {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NO_WARNINGS: '1', ...options.env };
  if (options.env?.STORAGE_EMULATOR_HOST === undefined) delete env.STORAGE_EMULATOR_HOST;
  const child = spawn(process.execPath, args, { cwd: options.cwd, env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.on('error', () => undefined); // EPIPE once the child is gone
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * Resolves once `condition()` holds, re-checking it whenever one of `events` fires (never on a timer); rejects
 * after `timeoutMs` with `what` and `detail()` so that a hang fails with a reason.
 */
export function until(
  condition: () => boolean,
  what: string,
  events: Array<[EventEmitter, string]>,
  detail: () => unknown = () => '',
  timeoutMs = 30_000,
): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!condition()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what} ${JSON.stringify(detail())}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      for (const [emitter, event] of events) emitter.off(event, check);
    };
    for (const [emitter, event] of events) emitter.on(event, check);
  });
}
