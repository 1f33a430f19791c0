/**
 * One run of one contender, in a fresh process, so that its peak RSS and CPU are its own. `run.ts` starts it as
 * `node child.js JSON` from a transpiled copy of the sources (see `build.ts`); `node --import tsx bench/child.ts JSON`
 * works too, for debugging. Prints exactly one JSON line (a `ChildResult`) on stdout and exits.
 *
 * Clock and CPU counter cover `contender.run()` only: from the moment the source is ready to hand out its first
 * byte (opening the session included) to the verified, finalized object. Process start-up, the TypeScript loader,
 * module loading and the random block are outside the window; peak RSS is the process's whole life (`peak-rss.ts`:
 * the kernel's high-water mark of this process's own address space).
 */
import { fstatSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadContender, type ContenderRunOptions } from './contender.js';
import { peakRss } from './peak-rss.js';
import { BenchSource } from './source.js';

/** What the parent asks for: which plug-in, and the run's options. */
export interface ChildRequest extends ContenderRunOptions {
  contender: string;
}

/** The single line the child prints. Times in milliseconds, memory in bytes. */
export type ChildResult =
  | {
      ok: true;
      contender: string;
      bytes: number;
      wallMs: number;
      cpuUserMs: number;
      cpuSystemMs: number;
      /** The kernel's high-water mark at exit (`peak-rss.ts`): the peak of the whole process. */
      peakRss: number;
      /** RSS just before `run()`: node, the loader, the modules and the source's block. */
      baselineRss: number;
    }
  | { ok: false; contender: string; error: string };

function emit(result: ChildResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : ` (cause: ${errorText(error.cause)})`;
  return `${error.name}: ${error.message}${cause}`;
}

/** For the error line if anything fails before the contender has a name. */
let label = '?';

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as ChildRequest;
  label = request.contender;
  // Orphan guard: the harness holds our stdin (a pipe or socket) open; if it goes away, so do we.
  const stdin = fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.once('close', () => process.exit(3));
    process.stdin.resume();
  }

  const { contender: id, ...options } = request;
  const contender = await loadContender(id);
  const source = new BenchSource(options.size, options.writeSize);
  const baselineRss = process.memoryUsage.rss();

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  try {
    await contender.run(options, source);
  } catch (error) {
    emit({ ok: false, contender: contender.name, error: errorText(error) });
    process.exit(1);
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  if (source.bytesWritten !== options.size) {
    emit({ ok: false, contender: contender.name, error: `the source wrote ${source.bytesWritten} of ${options.size} bytes` });
    process.exit(1);
  }
  emit({
    ok: true,
    contender: contender.name,
    bytes: source.bytesWritten,
    wallMs,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    peakRss: peakRss(),
    baselineRss,
  });
  // Do not wait for keep-alive sockets or timers of the contender.
  process.exit(0);
}

main().catch((error: unknown) => {
  emit({ ok: false, contender: label, error: errorText(error) });
  process.exit(1);
});
