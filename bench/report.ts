/**
 * Turns runs into numbers: medians per cell (scenario x contender), ratios against raw-put and
 * @google-cloud/storage, the issues' targets, and the tables of the console and of RESULTS.md. Many-stream
 * scenarios (issue 14) have a table of their own: objects correct, RSS growth per stream, the shared memory's peak.
 */
import type { ChartBar, ChartInput } from './chart.js';
import type { ChildResult } from './child.js';
import {
  BASELINE,
  INCUMBENT,
  KiB,
  MiB,
  OURS,
  OURS_PARALLEL,
  OURS_RETAIN,
  SCENARIOS,
  describeScenario,
  formatBytes,
  type Scenario,
} from './scenarios.js';
import type { ServerStats } from './server.js';

/** One run of one contender in one scenario. */
export interface RunRecord {
  rep: number;
  result: ChildResult;
  /** What the server saw; absent if asking failed. */
  server?: ServerStats;
  /** Why the harness rejects the run even though the child reported success (e.g. no object on the server). */
  error?: string;
  /** Many-stream runs: objects the server holds with the size and CRC32C their source wrote. */
  objectsCorrect?: number;
}

/** The runs of one contender in one scenario. */
export interface Cell {
  scenario: Scenario;
  /** Object size of this invocation (after `--quick`). */
  size: number;
  contenderId: string;
  contenderName: string;
  runs: RunRecord[];
}

/** The numbers of one successful run, or the medians of a cell. */
export interface Measurement {
  mibPerSecond: number;
  cpuSeconds: number;
  peakRssMiB: number;
  baselineRssMiB: number;
  serverCpuSeconds: number;
  puts: number;
}

/** Why a run failed, or `undefined` if it succeeded. */
export function runError(run: RunRecord): string | undefined {
  if (!run.result.ok) return run.result.error;
  return run.error;
}

/** The numbers of a successful run. */
export function measure(run: RunRecord): Measurement | undefined {
  const { result, server } = run;
  if (!result.ok || run.error !== undefined || server === undefined) return undefined;
  return {
    mibPerSecond: result.bytes / MiB / (result.wallMs / 1000),
    cpuSeconds: (result.cpuUserMs + result.cpuSystemMs) / 1000,
    peakRssMiB: result.peakRss / MiB,
    baselineRssMiB: result.baselineRss / MiB,
    serverCpuSeconds: server.cpuMs / 1000,
    puts: server.puts,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** Per-metric medians of a cell's successful runs; `undefined` if none succeeded. */
export function cellMedian(cell: Cell): Measurement | undefined {
  const ok = cell.runs.map(measure).filter((m): m is Measurement => m !== undefined);
  if (ok.length === 0) return undefined;
  const of = (key: keyof Measurement): number => median(ok.map((m) => m[key]));
  return {
    mibPerSecond: of('mibPerSecond'),
    cpuSeconds: of('cpuSeconds'),
    peakRssMiB: of('peakRssMiB'),
    baselineRssMiB: of('baselineRssMiB'),
    serverCpuSeconds: of('serverCpuSeconds'),
    puts: of('puts'),
  };
}

function find(cells: readonly Cell[], scenarioId: number, contenderId: string): Cell | undefined {
  return cells.find((cell) => cell.scenario.id === scenarioId && cell.contenderId === contenderId);
}

function medianOf(cells: readonly Cell[], scenarioId: number, contenderId: string): Measurement | undefined {
  const cell = find(cells, scenarioId, contenderId);
  return cell === undefined ? undefined : cellMedian(cell);
}

// -------------------------------------------------------------------------------------------------------------------
// Tables

/** A table rendered as Markdown with padded columns, readable in a terminal too. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly boolean[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length), 3));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, column) => (rightAligned[column] === true ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (rightAligned[column] === true ? `${'-'.repeat(width + 1)}:` : `${'-'.repeat(width + 2)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

const fixed = (value: number | undefined, digits: number): string =>
  value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
const signed = (value: number | undefined, digits: number): string =>
  value === undefined || !Number.isFinite(value) ? '—' : `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;

const RESULT_HEADERS = [
  '#',
  'scenario',
  'contender',
  'MiB/s',
  'CPU s',
  'peak RSS MiB',
  'MiB/s % of raw-put',
  'CPU x raw-put',
  'RSS Δ raw-put MiB',
  '… of which before run',
  'MiB/s x @google-cloud/storage',
  'PUTs',
  'server CPU s',
] as const;
const RESULT_ALIGN = [true, false, false, true, true, true, true, true, true, true, true, true, true];

/** Whether a cell belongs to a many-stream scenario (its own table, not the chart). */
export function isConcurrent(cell: Cell): boolean {
  return cell.scenario.concurrency !== undefined;
}

/** The results table (medians and ratios) of the single-stream scenarios among `cells`. */
export function resultsTable(cells: readonly Cell[]): string {
  const rows = cells
    .filter((cell) => !isConcurrent(cell))
    .map((cell) => {
      const m = cellMedian(cell);
      const raw = medianOf(cells, cell.scenario.id, BASELINE);
      const incumbent = medianOf(cells, cell.scenario.id, INCUMBENT);
      const failures = cell.runs.filter((run) => runError(run) !== undefined).length;
      const name = failures > 0 ? `${cell.contenderName} (${failures}/${cell.runs.length} failed)` : cell.contenderName;
      const vsRaw = m !== undefined && raw !== undefined && cell.contenderId !== BASELINE;
      const vsIncumbent = m !== undefined && incumbent !== undefined && cell.contenderId !== INCUMBENT;
      return [
        `S${cell.scenario.id}`,
        describeScenario(cell.scenario, cell.size),
        name,
        fixed(m?.mibPerSecond, 1),
        fixed(m?.cpuSeconds, 2),
        fixed(m?.peakRssMiB, 1),
        vsRaw ? fixed((m.mibPerSecond / raw.mibPerSecond) * 100, 1) : '',
        vsRaw ? fixed(m.cpuSeconds / raw.cpuSeconds, 2) : '',
        vsRaw ? signed(m.peakRssMiB - raw.peakRssMiB, 1) : '',
        vsRaw ? signed(m.baselineRssMiB - raw.baselineRssMiB, 1) : '',
        vsIncumbent ? fixed(m.mibPerSecond / incumbent.mibPerSecond, 2) : '',
        m === undefined ? '—' : String(Math.round(m.puts)),
        fixed(m?.serverCpuSeconds, 2),
      ];
    });
  return renderTable(RESULT_HEADERS, rows, RESULT_ALIGN);
}

/** The numbers of a many-stream run, or the medians of a cell (`objectsCorrect`: the fewest of its runs). */
export interface ConcurrentMeasurement {
  streams: number;
  objectsCorrect: number;
  wallSeconds: number;
  /** All streams' bytes over the wall time. */
  mibPerSecond: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** RSS with everything loaded and every source ready, just before the first stream started. */
  baselineRssMiB: number;
  /** The peak while the streams ran minus that baseline: what the streams added, garbage included. */
  growthMiB: number;
  growthPerStreamMiB: number;
  /** The contender's shared memory at its peak (ours: the pool's `peakBytesHeld`), if it reports one. */
  sharedPeakMiB: number | undefined;
  sharedMaxMiB: number | undefined;
  /**
   * Data at risk (issue 15), over the streams of the run that measured one: the largest of their maxima, and the
   * median of them. Undefined where the contender reported no commit (n/a).
   */
  atRiskMaxKiB: number | undefined;
  atRiskMedianKiB: number | undefined;
  puts: number;
  serverCpuSeconds: number;
  /** At the highest RSS sampled (`memory-sampler.ts`): seconds into the run, and growth over the baseline. */
  atPeakSeconds: number | undefined;
  heapGrowthMiB: number | undefined;
  /** Of the heap's growth, what objects took (`heapUsed`: live ones and garbage not yet collected); the rest is room V8 keeps for new ones. */
  liveHeapGrowthMiB: number | undefined;
  buffersGrowthMiB: number | undefined;
}

/** The numbers of a many-stream run whose child finished (some of its objects may be wrong: see `objectsCorrect`). */
export function measureConcurrent(run: RunRecord): ConcurrentMeasurement | undefined {
  const { result, server } = run;
  if (!result.ok || result.streams === undefined || server === undefined) return undefined;
  const { count, sharedMemory, memory } = result.streams;
  const growthMiB = (result.streams.peakRss - result.baselineRss) / MiB;
  const atRisk = result.streams.largestAtRisk.filter((bytes): bytes is number => bytes !== null);
  return {
    streams: count,
    objectsCorrect: run.objectsCorrect ?? 0,
    wallSeconds: result.wallMs / 1000,
    mibPerSecond: result.bytes / MiB / (result.wallMs / 1000),
    cpuSeconds: (result.cpuUserMs + result.cpuSystemMs) / 1000,
    peakRssMiB: result.peakRss / MiB,
    baselineRssMiB: result.baselineRss / MiB,
    growthMiB,
    growthPerStreamMiB: growthMiB / count,
    sharedPeakMiB: sharedMemory === undefined ? undefined : sharedMemory.peakBytesHeld / MiB,
    sharedMaxMiB: sharedMemory === undefined ? undefined : sharedMemory.maxBytes / MiB,
    atRiskMaxKiB: atRisk.length === 0 ? undefined : Math.max(...atRisk) / KiB,
    atRiskMedianKiB: atRisk.length === 0 ? undefined : median(atRisk) / KiB,
    puts: server.puts,
    serverCpuSeconds: server.cpuMs / 1000,
    atPeakSeconds: memory?.atPeak.seconds,
    heapGrowthMiB: memory === undefined ? undefined : (memory.atPeak.heapTotal - memory.baseline.heapTotal) / MiB,
    liveHeapGrowthMiB: memory === undefined ? undefined : (memory.atPeak.heapUsed - memory.baseline.heapUsed) / MiB,
    buffersGrowthMiB: memory === undefined ? undefined : (memory.atPeak.arrayBuffers - memory.baseline.arrayBuffers) / MiB,
  };
}

/** Per-metric medians of a many-stream cell's finished runs; `undefined` if none finished. */
export function concurrentMedian(cell: Cell): ConcurrentMeasurement | undefined {
  const done = cell.runs.map(measureConcurrent).filter((m): m is ConcurrentMeasurement => m !== undefined);
  const first = done[0];
  if (first === undefined) return undefined;
  type Optional =
    'sharedPeakMiB' | 'atRiskMaxKiB' | 'atRiskMedianKiB' | 'atPeakSeconds' | 'heapGrowthMiB' | 'liveHeapGrowthMiB' | 'buffersGrowthMiB';
  const of = (key: Exclude<keyof ConcurrentMeasurement, Optional | 'sharedMaxMiB'>): number => median(done.map((m) => m[key]));
  const optional = (key: Optional): number | undefined => {
    const values = done.map((m) => m[key]).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : median(values);
  };
  return {
    streams: first.streams,
    // A cell is only as correct as its worst run.
    objectsCorrect: Math.min(...done.map((m) => m.objectsCorrect)),
    wallSeconds: of('wallSeconds'),
    mibPerSecond: of('mibPerSecond'),
    cpuSeconds: of('cpuSeconds'),
    peakRssMiB: of('peakRssMiB'),
    baselineRssMiB: of('baselineRssMiB'),
    growthMiB: of('growthMiB'),
    growthPerStreamMiB: of('growthPerStreamMiB'),
    sharedPeakMiB: optional('sharedPeakMiB'),
    sharedMaxMiB: first.sharedMaxMiB,
    atRiskMaxKiB: optional('atRiskMaxKiB'),
    atRiskMedianKiB: optional('atRiskMedianKiB'),
    puts: of('puts'),
    serverCpuSeconds: of('serverCpuSeconds'),
    atPeakSeconds: optional('atPeakSeconds'),
    heapGrowthMiB: optional('heapGrowthMiB'),
    liveHeapGrowthMiB: optional('liveHeapGrowthMiB'),
    buffersGrowthMiB: optional('buffersGrowthMiB'),
  };
}

function sharedNote(m: ConcurrentMeasurement | undefined): string {
  const notes: string[] = [];
  if (m?.sharedPeakMiB !== undefined) notes.push(`pool peak ${m.sharedPeakMiB.toFixed(1)} of ${fixed(m.sharedMaxMiB, 0)} MiB`);
  if (m?.atPeakSeconds !== undefined && m.heapGrowthMiB !== undefined && m.buffersGrowthMiB !== undefined) {
    const live = m.liveHeapGrowthMiB === undefined ? '' : ` (in use ${signed(m.liveHeapGrowthMiB, 1)})`;
    notes.push(
      `at the sampled RSS peak (${m.atPeakSeconds.toFixed(1)} s in): V8 heap ${signed(m.heapGrowthMiB, 1)} MiB${live}, Buffers ${signed(m.buffersGrowthMiB, 1)} MiB`,
    );
  }
  return notes.join('; ');
}

const CONCURRENT_HEADERS = [
  '#',
  'scenario',
  'contender',
  'objects correct',
  'wall s',
  'MiB/s (all streams)',
  'CPU s',
  'peak RSS MiB',
  'RSS before streams MiB',
  'RSS growth MiB',
  'growth per stream MiB',
  'at risk per stream KiB: max',
  'median',
  'PUTs',
  'server CPU s',
  'note',
] as const;
const CONCURRENT_ALIGN = [true, false, false, true, true, true, true, true, true, true, true, true, true, true, true, false];

/** KiB with no decimals, or `n/a` where the contender reported no commit. */
const kibOrNa = (value: number | undefined): string => (value === undefined ? 'n/a' : value.toFixed(0));

/** The table of the many-stream scenarios among `cells` (medians). */
export function concurrentTable(cells: readonly Cell[]): string {
  const rows = cells.filter(isConcurrent).map((cell) => {
    const m = concurrentMedian(cell);
    const failures = cell.runs.filter((run) => runError(run) !== undefined).length;
    const name = failures > 0 ? `${cell.contenderName} (${failures}/${cell.runs.length} failed)` : cell.contenderName;
    return [
      `S${cell.scenario.id}`,
      describeScenario(cell.scenario, cell.size),
      name,
      m === undefined ? '—' : `${m.objectsCorrect}/${m.streams}`,
      fixed(m?.wallSeconds, 1),
      fixed(m?.mibPerSecond, 1),
      fixed(m?.cpuSeconds, 2),
      fixed(m?.peakRssMiB, 1),
      fixed(m?.baselineRssMiB, 1),
      signed(m?.growthMiB, 1),
      fixed(m?.growthPerStreamMiB, 2),
      m === undefined ? '—' : kibOrNa(m.atRiskMaxKiB),
      m === undefined ? '—' : kibOrNa(m.atRiskMedianKiB),
      m === undefined ? '—' : String(Math.round(m.puts)),
      fixed(m?.serverCpuSeconds, 2),
      sharedNote(m),
    ];
  });
  return renderTable(CONCURRENT_HEADERS, rows, CONCURRENT_ALIGN);
}

/** Every run, for the appendix. */
export function runsTable(cells: readonly Cell[]): string {
  const headers = [
    '#',
    'contender',
    'run',
    'MiB/s',
    'wall s',
    'CPU user s',
    'CPU sys s',
    'peak RSS MiB',
    'RSS before run MiB',
    'requests',
    'largest body',
    'server CPU s',
    'server peak RSS MiB',
    'notes',
  ];
  const align = [true, false, true, true, true, true, true, true, true, false, true, true, true, false];
  const rows: string[][] = [];
  for (const cell of cells) {
    for (const run of cell.runs) {
      const { result, server } = run;
      const m = measure(run) ?? measureConcurrent(run);
      const requests =
        server === undefined
          ? '—'
          : Object.entries(server.requests)
              .map(([kind, count]) => `${count} ${kind}`)
              .join(', ');
      const notes = [runError(run), ...(server?.unexpected ?? []).slice(0, 3)].filter((note) => note !== undefined).join('; ');
      rows.push([
        `S${cell.scenario.id}`,
        cell.contenderName,
        `${run.rep}/${cell.runs.length}`,
        fixed(m?.mibPerSecond, 1),
        result.ok ? fixed(result.wallMs / 1000, 2) : '—',
        result.ok ? fixed(result.cpuUserMs / 1000, 2) : '—',
        result.ok ? fixed(result.cpuSystemMs / 1000, 2) : '—',
        result.ok ? fixed(result.peakRss / MiB, 1) : '—',
        result.ok ? fixed(result.baselineRss / MiB, 1) : '—',
        requests,
        server === undefined ? '—' : formatBytes(server.maxBodyBytes),
        fixed(server === undefined ? undefined : server.cpuMs / 1000, 2),
        fixed(server === undefined ? undefined : server.peakRss / MiB, 0),
        notes.replaceAll('|', '\\|'),
      ]);
    }
  }
  return renderTable(headers, rows, align);
}

/** One line per run for the console, printed as the run ends. */
export function runLine(cell: Cell, run: RunRecord, repeat: number): string {
  const label = `S${cell.scenario.id} ${cell.contenderName.padEnd(22)} run ${run.rep}/${repeat}`;
  if (isConcurrent(cell)) return concurrentRunLine(label, run);
  const m = measure(run);
  if (m === undefined) return `${label}  FAILED: ${runError(run) ?? 'no server stats'}`;
  const unexpected = run.server?.unexpected.length ?? 0;
  return (
    `${label}  ${m.mibPerSecond.toFixed(1).padStart(7)} MiB/s  ${m.cpuSeconds.toFixed(2).padStart(6)} s CPU  ` +
    `${m.peakRssMiB.toFixed(1).padStart(6)} MiB peak RSS  ${String(m.puts).padStart(5)} PUTs  server ${m.serverCpuSeconds.toFixed(2)} s CPU` +
    (unexpected > 0 ? `  (${unexpected} unexpected responses)` : '')
  );
}

function concurrentRunLine(label: string, run: RunRecord): string {
  const m = measureConcurrent(run);
  const error = runError(run);
  if (m === undefined) return `${label}  FAILED: ${error ?? 'no server stats'}`;
  const shared = sharedNote(m);
  return (
    `${label}  ${m.objectsCorrect}/${m.streams} correct  ${m.wallSeconds.toFixed(1)} s  ${m.cpuSeconds.toFixed(2)} s CPU  ` +
    `${m.peakRssMiB.toFixed(1)} MiB peak RSS (${signed(m.growthMiB, 1)} MiB, ${m.growthPerStreamMiB.toFixed(2)} MiB per stream)  ` +
    `at risk per stream ${m.atRiskMaxKiB === undefined ? 'n/a' : `${kibOrNa(m.atRiskMaxKiB)} KiB max, ${kibOrNa(m.atRiskMedianKiB)} median`}  ` +
    `${m.puts} PUTs  server ${m.serverCpuSeconds.toFixed(2)} s CPU${shared === '' ? '' : `  ${shared}`}` +
    (error === undefined ? '' : `  FAILED: ${error}`)
  );
}

// -------------------------------------------------------------------------------------------------------------------
// Targets

/** One of the issue's targets, evaluated. `pass` is undefined when a needed cell did not run or failed. */
export interface TargetResult {
  target: string;
  threshold: string;
  measured: string;
  pass: boolean | undefined;
}

function rssBound(chunkSize: number): number {
  return (2 * chunkSize) / MiB + 16;
}

/** The targets of issue 4, from the medians. */
export function evaluateTargets(cells: readonly Cell[]): TargetResult[] {
  const chunkOf = (id: number): number => SCENARIOS.find((s) => s.id === id)?.chunkSize ?? Number.NaN;
  const results: TargetResult[] = [];
  const add = (
    target: string,
    threshold: string,
    inputs: readonly (Measurement | undefined)[],
    compute: (m: Measurement[]) => { measured: string; pass: boolean },
  ): void => {
    const present = inputs.filter((m): m is Measurement => m !== undefined);
    if (present.length < inputs.length) {
      results.push({ target, threshold, measured: 'not measured', pass: undefined });
      return;
    }
    results.push({ target, threshold, ...compute(present) });
  };
  const ours = (id: number): Measurement | undefined => medianOf(cells, id, OURS);
  const raw = (id: number): Measurement | undefined => medianOf(cells, id, BASELINE);
  const incumbent = (id: number): Measurement | undefined => medianOf(cells, id, INCUMBENT);
  const pair = (m: Measurement[]): [Measurement, Measurement] => [m[0] as Measurement, m[1] as Measurement];

  /** Throughput of the first measurement as a percentage of the second's, passing at `minPercent`. */
  const throughputPercent = (minPercent: number) => (m: Measurement[]) => {
    const [a, b] = pair(m);
    const ratio = (a.mibPerSecond / b.mibPerSecond) * 100;
    return {
      measured: `${ratio.toFixed(1)} % (${a.mibPerSecond.toFixed(1)} vs ${b.mibPerSecond.toFixed(1)} MiB/s)`,
      pass: ratio >= minPercent,
    };
  };
  add('S1 throughput: ours vs raw-put', '>= 85 %', [ours(1), raw(1)], throughputPercent(85));
  add('S1 CPU: ours vs raw-put', '<= 1.5 x', [ours(1), raw(1)], (m) => {
    const [a, b] = pair(m);
    const ratio = a.cpuSeconds / b.cpuSeconds;
    return { measured: `${ratio.toFixed(2)} x (${a.cpuSeconds.toFixed(2)} vs ${b.cpuSeconds.toFixed(2)} s)`, pass: ratio <= 1.5 };
  });
  add('S2 throughput, 1 KiB writes: ours vs raw-put fed the same writes', '>= 70 %', [ours(2), raw(2)], throughputPercent(70));
  add(
    'S4 throughput, +20 ms per response: ours vs raw-put (issue 14, default options)',
    '>= 80 %',
    [ours(4), raw(4)],
    throughputPercent(80),
  );
  add('S4 throughput, +20 ms per response: ours vs @google-cloud/storage', '>= 2.5 x', [ours(4), incumbent(4)], (m) => {
    const [a, b] = pair(m);
    const ratio = a.mibPerSecond / b.mibPerSecond;
    return { measured: `${ratio.toFixed(2)} x (${a.mibPerSecond.toFixed(1)} vs ${b.mibPerSecond.toFixed(1)} MiB/s)`, pass: ratio >= 2.5 };
  });
  for (const id of [1, 3]) {
    const bound = rssBound(chunkOf(id));
    add(
      `S${id} RSS: ours minus raw-put`,
      `<= 2 x ${formatBytes(chunkOf(id))} + 16 MiB = ${bound.toFixed(1)} MiB`,
      [ours(id), raw(id)],
      (m) => {
        const [a, b] = pair(m);
        const delta = a.peakRssMiB - b.peakRssMiB;
        return { measured: `${signed(delta, 1)} MiB (${a.peakRssMiB.toFixed(1)} vs ${b.peakRssMiB.toFixed(1)} MiB)`, pass: delta <= bound };
      },
    );
  }
  add('RSS does not grow with size: ours S5 vs S1', 'within 10 %', [ours(5), ours(1)], (m) => {
    const [large, small] = pair(m);
    const change = ((large.peakRssMiB - small.peakRssMiB) / small.peakRssMiB) * 100;
    return {
      measured: `${signed(change, 1)} % (${large.peakRssMiB.toFixed(1)} vs ${small.peakRssMiB.toFixed(1)} MiB)`,
      pass: Math.abs(change) <= 10,
    };
  });
  results.push(...parallelTargets(cells));
  results.push(...concurrentTargets(cells));
  results.push(...efficiencyTargets(cells));
  return results;
}

/**
 * Issue 25's targets, for this library with and without `retainWrites`: S1 at >= 0.9 x one raw PUT for <= 1.3 x its
 * CPU and <= 32 MiB more RSS; 100 slow streams at <= 600 KiB of RSS growth each; 1,000 trickles at <= 300 MiB.
 */
function efficiencyTargets(cells: readonly Cell[]): TargetResult[] {
  const results: TargetResult[] = [];
  const raw = medianOf(cells, 1, BASELINE);
  for (const id of [OURS, OURS_RETAIN]) {
    const label = id === OURS ? 'ours' : 'ours with retainWrites';
    const m = medianOf(cells, 1, id);
    const target = `S1 (issue 25): ${label} vs raw-put: throughput, CPU, RSS`;
    const threshold = '>= 90 %, <= 1.3 x, <= +32 MiB';
    if (m === undefined || raw === undefined) {
      results.push({ target, threshold, measured: 'not measured', pass: undefined });
    } else {
      const throughput = (m.mibPerSecond / raw.mibPerSecond) * 100;
      const cpu = m.cpuSeconds / raw.cpuSeconds;
      const rss = m.peakRssMiB - raw.peakRssMiB;
      results.push({
        target,
        threshold,
        measured: `${throughput.toFixed(1)} %, ${cpu.toFixed(2)} x, ${signed(rss, 1)} MiB`,
        pass: throughput >= 90 && cpu <= 1.3 && rss <= 32,
      });
    }
    const s6 = find(cells, 6, id);
    const m6 = s6 === undefined ? undefined : concurrentMedian(s6);
    results.push({
      target: `S6 (issue 25): RSS growth per stream: ${label}`,
      threshold: '<= 600 KiB',
      measured: m6 === undefined ? 'not measured' : `${((m6.growthPerStreamMiB * MiB) / 1024).toFixed(0)} KiB`,
      pass: m6 === undefined ? undefined : m6.growthPerStreamMiB * 1024 <= 600 && m6.objectsCorrect === m6.streams,
    });
    const s7 = find(cells, 7, id);
    const m7 = s7 === undefined ? undefined : concurrentMedian(s7);
    results.push({
      target: `S7 (issue 25): RSS growth, all correct: ${label}`,
      threshold: '<= 300 MiB',
      measured: m7 === undefined ? 'not measured' : `${signed(m7.growthMiB, 1)} MiB, ${m7.objectsCorrect}/${m7.streams} correct`,
      pass: m7 === undefined ? undefined : m7.growthMiB <= 300 && m7.objectsCorrect === m7.streams,
    });
  }
  return results;
}

/**
 * Issue 23's targets (scenarios 10 and 11): parallel parts against one raw PUT where each connection is capped, and
 * beside the single session where nothing is (with the memory bound of `(parallel + 1) × partSize + 32 MiB`).
 */
function parallelTargets(cells: readonly Cell[]): TargetResult[] {
  const results: TargetResult[] = [];
  const parallel = (id: number): Measurement | undefined => medianOf(cells, id, OURS_PARALLEL);
  const ratio = (a: Measurement, b: Measurement): string =>
    `${(a.mibPerSecond / b.mibPerSecond).toFixed(2)} x (${a.mibPerSecond.toFixed(1)} vs ${b.mibPerSecond.toFixed(1)} MiB/s)`;
  const limited = [parallel(10), medianOf(cells, 10, BASELINE)] as const;
  const [p10, raw10] = limited;
  const target10 = 'S10 throughput, 64 MiB/s per connection and +20 ms: parallel 8 × 16 MiB vs raw-put';
  if (p10 === undefined || raw10 === undefined)
    results.push({ target: target10, threshold: '>= 5 x', measured: 'not measured', pass: undefined });
  else
    results.push({ target: target10, threshold: '>= 5 x', measured: ratio(p10, raw10), pass: p10.mibPerSecond / raw10.mibPerSecond >= 5 });
  const [p11, ours11] = [parallel(11), medianOf(cells, 11, OURS)];
  const target11 = 'S11 throughput, no limit: parallel 8 × 16 MiB beside the single session';
  if (p11 === undefined || ours11 === undefined)
    results.push({ target: target11, threshold: 'reported', measured: 'not measured', pass: undefined });
  else results.push({ target: target11, threshold: 'reported', measured: ratio(p11, ours11), pass: true });
  const parts = SCENARIOS.find((s) => s.id === 11)?.parts;
  const bound = parts === undefined ? Number.NaN : ((parts.parallel + 1) * parts.partSize) / MiB + 32;
  const target11m = 'S11 memory growth (peak RSS minus RSS before the run): parallel';
  if (p11 === undefined)
    results.push({ target: target11m, threshold: `<= ${bound.toFixed(0)} MiB`, measured: 'not measured', pass: undefined });
  else {
    const growth = p11.peakRssMiB - p11.baselineRssMiB;
    results.push({
      target: target11m,
      threshold: `<= ${bound.toFixed(0)} MiB`,
      measured: `${growth.toFixed(1)} MiB`,
      pass: growth <= bound,
    });
  }
  return results;
}

/** Issue 14's bounds: RSS growth per slow stream, total growth for 1,000 trickles, peak RSS under a 256 MiB pool. */
const PER_STREAM_GROWTH_MIB = 0.6;
const TRICKLE_GROWTH_MIB = 400;
/** Above the pool's ceiling: node, the modules, the streams' own objects and garbage. */
const POOL_HEADROOM_MIB = 64;
/** Issue 15: a stream bounded to 2 s at 64 KiB/s risks one full block and what arrives before GCS confirms it. */
const AT_RISK_KIB = 512;

/**
 * The targets of issues 14 and 15 (scenarios 6 to 9), from the medians; the incumbent's figure is shown where it
 * compares.
 */
function concurrentTargets(cells: readonly Cell[]): TargetResult[] {
  const results: TargetResult[] = [];
  const cellOf = (id: number, contenderId: string): ConcurrentMeasurement | undefined => {
    const cell = find(cells, id, contenderId);
    return cell === undefined ? undefined : concurrentMedian(cell);
  };
  // The scenario as it ran (`--streams` may have lowered its count), else as defined.
  const scenarioOf = (id: number): Scenario | undefined => find(cells, id, OURS)?.scenario ?? SCENARIOS.find((s) => s.id === id);
  const streamsOf = (id: number): number => scenarioOf(id)?.concurrency?.streams ?? Number.NaN;
  const rateOf = (id: number): string => formatBytes(scenarioOf(id)?.concurrency?.bytesPerSecond ?? Number.NaN);
  /** A bound on a run with wrong objects cannot pass: a failed stream frees its memory early. */
  const wrongNote = (m: ConcurrentMeasurement): string =>
    m.objectsCorrect < m.streams ? `; ${m.streams - m.objectsCorrect} objects wrong` : '';
  const add = (
    target: string,
    threshold: string,
    m: ConcurrentMeasurement | undefined,
    compute: (m: ConcurrentMeasurement) => { measured: string; pass: boolean },
  ): void => {
    if (m === undefined) results.push({ target, threshold, measured: 'not measured', pass: undefined });
    else results.push({ target, threshold, ...compute(m) });
  };
  const allCorrect = (id: number): void => {
    add(`S${id} objects correct (size and CRC32C on the server): ours`, `all ${streamsOf(id)}`, cellOf(id, OURS), (m) => ({
      measured: `${m.objectsCorrect}/${m.streams}`,
      pass: m.objectsCorrect === m.streams,
    }));
  };

  const incumbent6 = cellOf(6, INCUMBENT);
  add(
    `S6 RSS growth per stream, ${streamsOf(6)} streams at ${rateOf(6)}/s: ours`,
    `<= ${PER_STREAM_GROWTH_MIB} MiB`,
    cellOf(6, OURS),
    (m) => ({
      measured:
        `${m.growthPerStreamMiB.toFixed(2)} MiB (${signed(m.growthMiB, 1)} MiB in all` +
        `${incumbent6 === undefined ? '' : `; @google-cloud/storage ${incumbent6.growthPerStreamMiB.toFixed(2)} MiB per stream`})${wrongNote(m)}`,
      pass: m.growthPerStreamMiB <= PER_STREAM_GROWTH_MIB && m.objectsCorrect === m.streams,
    }),
  );
  allCorrect(7);
  add(`S7 RSS growth, ${streamsOf(7)} streams at ${rateOf(7)}/s: ours`, `<= ${TRICKLE_GROWTH_MIB} MiB`, cellOf(7, OURS), (m) => ({
    measured: `${signed(m.growthMiB, 1)} MiB (${m.growthPerStreamMiB.toFixed(2)} MiB per stream)${wrongNote(m)}`,
    pass: m.growthMiB <= TRICKLE_GROWTH_MIB && m.objectsCorrect === m.streams,
  }));
  const limit = scenarioOf(8)?.concurrency?.memoryLimit ?? Number.NaN;
  const bound = limit / MiB + POOL_HEADROOM_MIB;
  add(
    `S8 peak RSS, ${streamsOf(8)} streams at full speed through a ${formatBytes(limit)} pool: ours`,
    `<= ${formatBytes(limit)} + ${POOL_HEADROOM_MIB} MiB = ${bound} MiB`,
    cellOf(8, OURS),
    (m) => ({
      measured: `${m.peakRssMiB.toFixed(1)} MiB (${m.baselineRssMiB.toFixed(1)} before the streams${m.sharedPeakMiB === undefined ? '' : `, pool peak ${m.sharedPeakMiB.toFixed(1)} MiB`})${wrongNote(m)}`,
      pass: m.peakRssMiB <= bound && m.objectsCorrect === m.streams,
    }),
  );
  allCorrect(8);

  const incumbent9 = cellOf(9, INCUMBENT);
  add(
    `S9 largest data at risk per stream, ${streamsOf(9)} streams at ${rateOf(9)}/s, maxUncommittedMs ${String(scenarioOf(9)?.maxUncommittedMs)}: ours`,
    `<= ${AT_RISK_KIB} KiB`,
    cellOf(9, OURS),
    (m) => ({
      measured:
        `${kibOrNa(m.atRiskMaxKiB)} KiB max over streams, ${kibOrNa(m.atRiskMedianKiB)} KiB median` +
        `${incumbent9 === undefined ? '' : `; @google-cloud/storage ${kibOrNa(incumbent9.atRiskMaxKiB)}`}${wrongNote(m)}`,
      pass: m.atRiskMaxKiB !== undefined && m.atRiskMaxKiB <= AT_RISK_KIB && m.objectsCorrect === m.streams,
    }),
  );
  // S6's memory bound still holds with the requests the time bound adds.
  add(`S9 RSS growth per stream (S6's bound): ours`, `<= ${PER_STREAM_GROWTH_MIB} MiB`, cellOf(9, OURS), (m) => ({
    measured:
      `${m.growthPerStreamMiB.toFixed(2)} MiB (${signed(m.growthMiB, 1)} MiB in all` +
      `${incumbent9 === undefined ? '' : `; @google-cloud/storage ${incumbent9.growthPerStreamMiB.toFixed(2)} MiB per stream`})${wrongNote(m)}`,
    pass: m.growthPerStreamMiB <= PER_STREAM_GROWTH_MIB && m.objectsCorrect === m.streams,
  }));
  allCorrect(9);
  return results;
}

/** The targets as a table. */
export function targetsTable(targets: readonly TargetResult[]): string {
  const verdict = (pass: boolean | undefined): string => (pass === undefined ? 'n/a' : pass ? 'PASS' : 'FAIL');
  return renderTable(
    ['target', 'threshold', 'measured (medians)', 'result'],
    targets.map((t) => [t.target, t.threshold, t.measured, verdict(t.pass)]),
    [false, false, false, false],
  );
}

// -------------------------------------------------------------------------------------------------------------------
// Chart

/** The chart's title: what is compared. */
const CHART_TITLE = 'Streaming an object into GCS: medians per scenario, client process only';

/** The lines under the title: how the numbers were made. `packages` as in the report's header, if it has one. */
function chartSubtitle(command: string, node: string, packages: string | undefined, cpus: string, quick: boolean): string[] {
  const parts = [command, `Node ${node}`, ...(packages === undefined ? [] : [packages]), cpus];
  return [`${parts.join(', ')}${quick ? ' (quick mode: indicative only)' : ''}.`, 'Peak RSS is the whole client process, Node included.'];
}

/**
 * The chart's input read from a report this harness wrote: its results table (medians as printed) and its header.
 * `run.ts` draws from the text it has just written, `redraw-chart.ts` from a committed one: the same numbers give
 * the same picture either way.
 */
export function chartInputFromReport(markdown: string): ChartInput {
  const optional = (name: string): string | undefined => new RegExp(`^- ${name}: (.*)$`, 'm').exec(markdown)?.[1]?.trim();
  const field = (name: string): string => optional(name) ?? '?';
  const command = field('Command').replaceAll('`', '');
  const cpus = /^\d+ CPUs/.exec(field('Machine'))?.[0] ?? field('Machine');
  const subtitle = chartSubtitle(command, field('Node'), optional('Packages'), cpus, field('Mode').includes('**quick**'));

  const section = markdown.split('\n## Results\n')[1]?.split('\n## ')[0];
  if (section === undefined) throw new Error('no "## Results" section');
  const split = (line: string): string[] =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
  const [header, , ...lines] = section.split('\n').filter((line) => line.startsWith('|'));
  if (header === undefined) throw new Error('the Results section has no table');
  const columns = split(header);
  const column = (name: string): number => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`the results table has no column ${JSON.stringify(name)}`);
    return index;
  };
  const [id, scenario, contender, speed, rss] = ['#', 'scenario', 'contender', 'MiB/s', 'peak RSS MiB'].map(column) as [
    number,
    number,
    number,
    number,
    number,
  ];

  const rows = new Map<string, { label: string; bars: ChartBar[] }>();
  const contenders: string[] = [];
  for (const line of lines) {
    const cells = split(line);
    const name = (cells[contender] ?? '').replace(/ \(\d+\/\d+ failed\)$/, '');
    if (!contenders.includes(name)) contenders.push(name);
    const key = cells[id] ?? '';
    let row = rows.get(key);
    if (row === undefined) {
      row = { label: `${key}: ${cells[scenario] ?? ''}`, bars: [] };
      rows.set(key, row);
    }
    const mibPerSecond = Number(cells[speed]);
    const peakRssMiB = Number(cells[rss]);
    // '—' (no successful run) is not a number: that contender is drawn as not run.
    if (Number.isFinite(mibPerSecond) && Number.isFinite(peakRssMiB)) row.bars.push({ contender: name, mibPerSecond, peakRssMiB });
  }
  return { title: CHART_TITLE, subtitle, contenders, scenarios: [...rows.values()] };
}
