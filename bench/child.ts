/**
 * One run of one contender, in a fresh process, so that its peak RSS and CPU are its own. `run.ts` starts it as
 * `node child.js JSON` from a transpiled copy of the sources (see `build.ts`); `node --import tsx bench/child.ts JSON`
 * works too, for debugging. Prints exactly one JSON line (a `ChildResult`) on stdout and exits.
 *
 * Clock and CPU counter cover `contender.run()` only: from the moment the source is ready to hand out its first
 * byte (opening the session included) to the verified, finalized object. Process start-up, the TypeScript loader,
 * module loading and the random block are outside the window; peak RSS is the process's whole life (`peak-rss.ts`:
 * the kernel's high-water mark of this process's own address space).
 *
 * A many-stream request (`concurrency`) runs `streams` uploads at once, objects `<name>/0` to `<name>/<streams-1>`,
 * each from a source of its own (paced if asked, staggered over one write interval) and keeps every source's
 * CRC32C, for the harness to check each object on the server. The clock then runs until the last upload settled,
 * and `baselineRss` is taken with everything loaded and every source ready, just before the first stream starts;
 * the high-water mark is restarted there, so that `streams.peakRss` is the peak while the streams ran: a spike of
 * module loading does not count as the streams' growth. Each stream also has a `DataAtRiskMeter` (issue 15), fed
 * by its source's writes and by the commits its contender reports.
 */
import { fstatSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadContender, type Contender, type ContenderRunOptions, type RunObserver, type SharedMemoryStats } from './contender.js';
import { DataAtRiskMeter } from './data-at-risk.js';
import { memoryNow, PeakMemorySampler, type MemorySample } from './memory-sampler.js';
import { peakRss, resetPeakRss } from './peak-rss.js';
import type { Concurrency } from './scenarios.js';
import { BenchSource, randomBlock } from './source.js';

/** What the parent asks for: which plug-in, and the run's options. */
export interface ChildRequest extends ContenderRunOptions {
  contender: string;
  /** Many streams at once in this process (`memoryLimit` goes in the options, for the contender). */
  concurrency?: Omit<Concurrency, 'memoryLimit'>;
}

/** What a many-stream run adds to its result. */
export interface StreamsResult {
  count: number;
  /** Per stream, in name order: the CRC32C of what its source wrote (base64, as GCS gives it), null if it failed. */
  crc32c: (string | null)[];
  /** Uploads that rejected, or whose source did not write all its bytes. */
  failed: number;
  /** The first few failures. */
  errors: string[];
  /** The contender's own account of its shared memory (ours: the pool's peak), if it gives one. */
  sharedMemory?: SharedMemoryStats;
  /** Peak RSS from just before the first stream to the end (the process's whole life where it cannot be reset). */
  peakRss: number;
  /** `process.memoryUsage()` just before the first stream, and at the highest RSS sampled while they ran. */
  memory: { baseline: MemorySample; atPeak: MemorySample };
  /**
   * Per stream, in name order: the most bytes its source had written that the server had not confirmed, sampled on
   * every write and every commit the contender reported (`data-at-risk.ts`); null where it reported none.
   */
  largestAtRisk: (number | null)[];
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
      /** Many-stream runs only. */
      streams?: StreamsResult;
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

/** For runs that measure no data at risk. */
const IGNORE_COMMITS: RunObserver = { committed: () => undefined };

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

  const { contender: id, concurrency, ...options } = request;
  const contender = await loadContender(id);
  if (concurrency !== undefined) return runMany(contender, options, concurrency);
  const source = new BenchSource(options.size, options.writeSize);
  const baselineRss = process.memoryUsage.rss();

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  try {
    await contender.run(options, source, IGNORE_COMMITS);
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

/** Errors kept in a many-stream result: enough to see what went wrong, few enough for one line of output. */
const ERRORS_KEPT = 3;

async function runMany(contender: Contender, options: ContenderRunOptions, concurrency: Omit<Concurrency, 'memoryLimit'>): Promise<void> {
  const { streams, bytesPerSecond } = concurrency;
  // The checksum module is loaded here, before the baseline, so that its RSS is not counted as the streams'.
  const { crc32c } = await import('@node-rs/crc32');
  const block = randomBlock();
  const intervalMs = bytesPerSecond === undefined ? 0 : (options.writeSize / bytesPerSecond) * 1000;
  const meters = Array.from({ length: streams }, () => new DataAtRiskMeter());
  const sources = meters.map(
    (meter, i) =>
      new BenchSource(options.size, options.writeSize, {
        block,
        offset: Math.floor((i * block.length) / streams),
        bytesPerSecond,
        startDelayMs: (i / streams) * intervalMs,
        checksum: crc32c,
        onWrite: (bytesWritten) => meter.written(bytesWritten),
      }),
  );
  const peakBeforeStreams = peakRss();
  const baselineRss = process.memoryUsage.rss();
  resetPeakRss();
  const baselineMemory = memoryNow();
  const sampler = new PeakMemorySampler();

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const settled = await Promise.allSettled(
    sources.map((source, i) => {
      const meter = meters[i] ?? new DataAtRiskMeter();
      return contender.run({ ...options, name: `${options.name}/${i}` }, source, { committed: (bytes) => meter.committed(bytes) });
    }),
  );
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const atPeak = sampler.stop();

  const errors: string[] = [];
  const crcs = settled.map((outcome, i): string | null => {
    const source = sources[i];
    let error: string | undefined;
    if (outcome.status === 'rejected') error = errorText(outcome.reason);
    else if (source === undefined || source.bytesWritten !== options.size)
      error = `the source wrote ${source?.bytesWritten ?? 0} of ${options.size} bytes`;
    if (error === undefined && source !== undefined) return source.crc32c;
    if (errors.length < ERRORS_KEPT) errors.push(`stream ${i}: ${error ?? '?'}`);
    return null;
  });
  const sharedMemory = contender.sharedMemory?.();
  const peakWhileStreaming = peakRss();
  emit({
    ok: true,
    contender: contender.name,
    bytes: sources.reduce((sum, source) => sum + source.bytesWritten, 0),
    wallMs,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    peakRss: Math.max(peakBeforeStreams, peakWhileStreaming),
    baselineRss,
    streams: {
      count: streams,
      crc32c: crcs,
      failed: crcs.filter((crc) => crc === null).length,
      errors,
      ...(sharedMemory === undefined ? {} : { sharedMemory }),
      peakRss: peakWhileStreaming,
      memory: { baseline: baselineMemory, atPeak },
      largestAtRisk: meters.map((meter) => meter.largest ?? null),
    },
  });
  process.exit(0);
}

main().catch((error: unknown) => {
  emit({ ok: false, contender: label, error: errorText(error) });
  process.exit(1);
});
