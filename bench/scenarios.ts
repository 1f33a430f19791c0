/**
 * The matrix of issues 4, 14, 15 and 23: each scenario runs every contender (unless it names its own), each run in a
 * fresh process. Scenarios 1 to 5 and 10, 11 upload one object per process; 6 to 9 many at once in one process
 * (`concurrency`). 10 and 11 compare parallel composite uploads with one session and one raw PUT.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Contender ids (file names in `bench/contenders/`) the report compares against. */
export const OURS = 'gcs-resumable-stream';
export const BASELINE = 'raw-put';
export const INCUMBENT = 'google-cloud-storage';
/** This library with `retainWrites` (issue 25): scenarios 1 to 5 (every contender runs those), 6 and 7. */
export const OURS_RETAIN = 'gcs-resumable-stream-retain';
/** This library with parallel composite uploads (`parallel`, `partSize`): scenarios 10 and 11 only. */
export const OURS_PARALLEL = 'gcs-resumable-stream-parallel';
/** This library with `checksumWorker: true` (issue 25): runs only where named with `--contenders`. */
export const OURS_WORKER = 'gcs-resumable-stream-worker';

/** Parallel composite uploads, for contenders that do them (ours: `createGcsWriteStream({ parallel, partSize })`). */
export interface ParallelParts {
  /** Part uploads in flight at once. */
  parallel: number;
  /** Bytes per part. */
  partSize: number;
}

/**
 * Many streams in one process (issue 14), all started together: what a server uploading many slow producers at
 * once pays per stream, and whether a shared memory ceiling holds.
 */
export interface Concurrency {
  /** Streams uploading at once. */
  streams: number;
  /**
   * Each stream's source rate, bytes per second: `writeSize` writes paced by timers, staggered so that the streams
   * do not tick in lockstep. Absent: every source writes as fast as its stream accepts.
   */
  bytesPerSecond?: number;
  /** A byte ceiling the streams share, for contenders that have one (ours: one `MemoryPool({ maxBytes })`). */
  memoryLimit?: number;
}

/** One row group of the matrix. */
export interface Scenario {
  id: number;
  /** Object size, bytes (before `--quick` scaling); per stream when `concurrency` is set. */
  size: number;
  writeSize: number;
  /** Absent: each contender's default (`@google-cloud/storage` then streams the object in one PUT). */
  chunkSize?: number;
  /** Delay the server adds to every response (a separate server process when non-zero). */
  latencyMs: number;
  /** Only these contender ids run it; all of them when absent. */
  contenders?: readonly string[];
  /** Skipped by `--skip-large`. */
  large?: boolean;
  /** Many streams in one process; one stream when absent. */
  concurrency?: Concurrency;
  /** The bound on uncommitted data (ms) for contenders that have one (ours); absent: their default. */
  maxUncommittedMs?: number;
  /**
   * The server reads each connection's request bodies no faster than this (`startLocalGcs({ connectionBytesPerSecond })`,
   * a separate server process): GCS's per-stream cap, which loopback does not have. Absent: no limit.
   */
  connectionBytesPerSecond?: number;
  /** Parallel parts for contenders that upload that way; absent: they do not run the scenario in parallel. */
  parts?: ParallelParts;
  /** What it shows. */
  purpose: string;
}

export const SCENARIOS: readonly Scenario[] = [
  { id: 1, size: 1 * GiB, writeSize: 64 * KiB, chunkSize: 8 * MiB, latencyMs: 0, purpose: 'throughput and CPU with default-sized chunks' },
  {
    id: 2,
    size: 1 * GiB,
    writeSize: 1 * KiB,
    chunkSize: 8 * MiB,
    latencyMs: 0,
    purpose: 'per-write overhead: tiny writes (raw-put gets the same 1 KiB writes)',
  },
  {
    id: 3,
    size: 256 * MiB,
    writeSize: 64 * KiB,
    chunkSize: 256 * KiB,
    latencyMs: 0,
    purpose: 'per-request overhead: the smallest chunk GCS allows',
  },
  { id: 4, size: 256 * MiB, writeSize: 64 * KiB, chunkSize: 8 * MiB, latencyMs: 20, purpose: 'pipelining: every response 20 ms late' },
  {
    id: 5,
    size: 4 * GiB,
    writeSize: 64 * KiB,
    chunkSize: 8 * MiB,
    latencyMs: 0,
    contenders: [OURS, BASELINE],
    large: true,
    purpose: 'memory bound: peak RSS must not grow with the object size (compare with scenario 1)',
  },
  // Issue 14. Default chunk sizes, as a user creating many streams would leave them. raw-put does not apply: it
  // needs the size up front and is no client one would run at a fixed rate. Sizes are rate × duration.
  {
    id: 6,
    size: 256 * KiB * 70,
    writeSize: 64 * KiB,
    latencyMs: 0,
    contenders: [OURS, OURS_RETAIN, INCUMBENT],
    concurrency: { streams: 100, bytesPerSecond: 256 * KiB },
    purpose: 'memory per slow stream: 100 streams at 256 KiB/s for 70 s, RSS growth per stream',
  },
  {
    id: 7,
    size: 32 * KiB * 40,
    writeSize: 8 * KiB,
    latencyMs: 0,
    contenders: [OURS, OURS_RETAIN, INCUMBENT],
    concurrency: { streams: 1000, bytesPerSecond: 32 * KiB },
    purpose: '1,000 trickling streams for 40 s: every object correct, total RSS growth bounded',
  },
  {
    id: 8,
    size: 32 * MiB,
    writeSize: 64 * KiB,
    latencyMs: 0,
    contenders: [OURS, INCUMBENT],
    concurrency: { streams: 300, memoryLimit: 256 * MiB },
    // 9.6 GiB per contender; the local server holds each of @google-cloud/storage's single PUTs whole until it ends.
    large: true,
    purpose: 'a shared ceiling: 300 streams at full speed through one 256 MiB pool (ours; the incumbent has none)',
  },
  // Issue 15. Four writes a second, as in S6 and S7. A 256 KiB block takes 4 s to fill at this rate, so the 2 s
  // bound commits each block as soon as it is full: at risk, one block plus what arrives before GCS confirms it.
  {
    id: 9,
    size: 64 * KiB * 40,
    writeSize: 16 * KiB,
    latencyMs: 0,
    contenders: [OURS, INCUMBENT],
    concurrency: { streams: 100, bytesPerSecond: 64 * KiB },
    maxUncommittedMs: 2000,
    purpose:
      'data at risk: 100 streams at 64 KiB/s for 40 s, ours with maxUncommittedMs 2000; the most bytes written but not confirmed, per stream',
  },
  // Issue 23. One connection to GCS carries only so much: with each connection limited to 64 MiB/s and every answer
  // 20 ms late, eight parts in flight should reach >= 5x one raw PUT of the same bytes (a single session at most 1x).
  {
    id: 10,
    size: 1 * GiB,
    writeSize: 64 * KiB,
    chunkSize: 8 * MiB,
    latencyMs: 20,
    connectionBytesPerSecond: 64 * MiB,
    parts: { parallel: 8, partSize: 16 * MiB },
    contenders: [OURS_PARALLEL, BASELINE, OURS],
    purpose:
      'parallel composite upload where each connection is capped (64 MiB/s) and answers are 20 ms late: parallel 8 × 16 MiB parts vs one raw PUT',
  },
  // The same without limit or latency: a link one connection fills, where parts can only show what they cost.
  {
    id: 11,
    size: 1 * GiB,
    writeSize: 64 * KiB,
    chunkSize: 8 * MiB,
    latencyMs: 0,
    parts: { parallel: 8, partSize: 16 * MiB },
    contenders: [OURS_PARALLEL, OURS],
    purpose: 'the cost of composition on a link one connection can fill: parallel 8 × 16 MiB parts beside the single session',
  },
];

/**
 * `--quick` divides object sizes (not write or chunk sizes, stream counts or rates) by this: a paced scenario then
 * lasts a sixteenth of its duration with all its streams.
 */
export const QUICK_DIVISOR = 16;

/** Human-readable byte count: `1 GiB`, `64 KiB`, `256 MiB`. */
export function formatBytes(bytes: number): string {
  for (const [unit, scale] of [
    ['GiB', GiB],
    ['MiB', MiB],
  ] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale} ${unit}`;
  }
  // 17.5 MiB rather than 17920 KiB; two decimals at most.
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(2))} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

/** `8 MiB chunks`, or `default chunks` when the scenario leaves the size to each contender. */
export function describeChunk(chunkSize: number | undefined): string {
  return chunkSize === undefined ? 'default chunks' : `${formatBytes(chunkSize)} chunks`;
}

/** How long a paced stream of `size` bytes writes, in seconds; undefined at full speed. */
export function pacedSeconds(scenario: Scenario, size: number): number | undefined {
  const rate = scenario.concurrency?.bytesPerSecond;
  return rate === undefined ? undefined : size / rate;
}

/** `100 × 256 KiB/s for 70 s`, `300 at full speed, 256 MiB ceiling`; `1` for a single-stream scenario. */
export function describeStreams(scenario: Scenario, size: number): string {
  const concurrency = scenario.concurrency;
  if (concurrency === undefined) return '1';
  const seconds = pacedSeconds(scenario, size);
  const rate =
    concurrency.bytesPerSecond === undefined || seconds === undefined
      ? ' at full speed'
      : ` × ${formatBytes(concurrency.bytesPerSecond)}/s for ${Number(seconds.toFixed(1))} s`;
  const ceiling = concurrency.memoryLimit === undefined ? '' : `, ${formatBytes(concurrency.memoryLimit)} ceiling`;
  return `${concurrency.streams}${rate}${ceiling}`;
}

/** `1 GiB, 64 KiB writes, 8 MiB chunks, +20 ms`; `100 × 256 KiB/s for 70 s, 17.5 MiB each, ...` for many streams. */
export function describeScenario(scenario: Scenario, size: number): string {
  const latency =
    (scenario.latencyMs > 0 ? `, +${scenario.latencyMs} ms per response` : '') +
    (scenario.connectionBytesPerSecond === undefined ? '' : `, ${formatBytes(scenario.connectionBytesPerSecond)}/s per connection`) +
    (scenario.parts === undefined ? '' : `, parallel ${scenario.parts.parallel} × ${formatBytes(scenario.parts.partSize)} parts (ours)`);
  const streams = scenario.concurrency === undefined ? '' : `${describeStreams(scenario, size)}, each `;
  const bound = scenario.maxUncommittedMs === undefined ? '' : `, maxUncommittedMs ${scenario.maxUncommittedMs} (ours)`;
  return `${streams}${formatBytes(size)}, ${formatBytes(scenario.writeSize)} writes, ${describeChunk(scenario.chunkSize)}${latency}${bound}`;
}
