/**
 * `npm run bench [-- flags]`: runs the matrix of `scenarios.ts` for the plug-ins of `bench/contenders/`, each run
 * in a fresh process against a local GCS server in another process; prints a line per run and a table per scenario;
 * writes RESULTS.md (see bench/README.md).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildRequest } from './child.js';
import { listContenderIds, loadContender, type Contender } from './contender.js';
import { buildTree } from './build.js';
import { renderBenchChart } from './chart.js';
import { ROOT_DIR, ServerProcess, runChild } from './processes.js';
import {
  chartInputFromReport,
  concurrentTable,
  evaluateTargets,
  isConcurrent,
  resultsTable,
  runError,
  runLine,
  runsTable,
  targetsTable,
  type Cell,
  type RunRecord,
} from './report.js';
import {
  BASELINE,
  GiB,
  INCUMBENT,
  MiB,
  OURS,
  OURS_WORKER,
  OURS_PARALLEL,
  QUICK_DIVISOR,
  SCENARIOS,
  describeScenario,
  describeStreams,
  formatBytes,
  pacedSeconds,
  type Scenario,
} from './scenarios.js';

const BUCKET = 'bench';
/** The unrecorded upload that warms up each server (see `warmUp`). */
const WARM_UP = { size: 16 * MiB, writeSize: 64 * 1024, chunkSize: 256 * 1024 } as const;

const USAGE = `Usage: npm run bench -- [flags]
  --quick              object sizes / ${QUICK_DIVISOR}: paced streams run 1/${QUICK_DIVISOR} as long (write and chunk sizes,
                       stream counts and rates unchanged)
  --only 1,3,4         run only these scenarios
  --skip-large         skip scenarios ${SCENARIOS.filter((s) => s.large === true)
    .map((s) => s.id)
    .join(' and ')} (4 GiB; 300 x 32 MiB)
  --streams N          at most N streams in the many-stream scenarios (a smoke test; the targets keep their bounds)
  --contenders a,b     only these contenders (file ids or names; available: ${listContenderIds().join(', ')})
  --repeat N           runs per contender and scenario; the report shows medians (default 1)
  --timeout S          seconds before a run is killed (default: 60 + 1 s per 4 MiB of object, all streams'
                       objects at full speed, or 60 + twice the duration of paced streams)
  --out FILE           where to write the report (default bench/RESULTS.md; its chart goes beside it, .md -> .svg)
  --help`;

interface Settings {
  quick: boolean;
  scenarios: Scenario[];
  contenders: Map<string, Contender>;
  repeat: number;
  timeoutSeconds: number | undefined;
  out: string;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function positiveInteger(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) fail(`${flag} needs a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

async function parseSettings(argv: string[]): Promise<Settings> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'skip-large': { type: 'boolean', default: false },
        streams: { type: 'string' },
        contenders: { type: 'string' },
        repeat: { type: 'string' },
        timeout: { type: 'string' },
        out: { type: 'string', default: 'bench/RESULTS.md' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }

  let scenarios = [...SCENARIOS];
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((text) => positiveInteger(text.trim(), '--only'));
    for (const id of ids)
      if (!SCENARIOS.some((s) => s.id === id)) fail(`no scenario ${String(id)} (there are ${SCENARIOS.map((s) => s.id).join(', ')})`);
    scenarios = scenarios.filter((s) => ids.includes(s.id));
  }
  if (values['skip-large']) scenarios = scenarios.filter((s) => s.large !== true);
  if (scenarios.length === 0) fail('no scenario left to run');
  const maxStreams = positiveInteger(values.streams, '--streams');
  if (maxStreams !== undefined) {
    scenarios = scenarios.map((s) =>
      s.concurrency === undefined ? s : { ...s, concurrency: { ...s.concurrency, streams: Math.min(s.concurrency.streams, maxStreams) } },
    );
  }

  const all = new Map<string, Contender>();
  for (const id of listContenderIds()) all.set(id, await loadContender(id));
  // The worker contender answers one question (what the CRC32C worker changes): it runs only where named.
  let contenders = new Map([...all].filter(([id]) => id !== OURS_WORKER));
  if (values.contenders !== undefined) {
    contenders = new Map();
    for (const wanted of values.contenders.split(',').map((text) => text.trim())) {
      const entry = [...all].find(([id, contender]) => id === wanted || contender.name === wanted);
      if (entry === undefined) fail(`no contender ${JSON.stringify(wanted)} (there are ${[...all.keys()].join(', ')})`);
      contenders.set(entry[0], entry[1]);
    }
  }

  return {
    quick: values.quick,
    scenarios,
    contenders,
    repeat: positiveInteger(values.repeat, '--repeat') ?? 1,
    timeoutSeconds: positiveInteger(values.timeout, '--timeout'),
    out: resolve(process.cwd(), values.out),
  };
}

/** Baseline first, ours next, then the rest; rotated by one position every repetition to spread drift evenly. */
function runOrder(ids: readonly string[], rep: number): string[] {
  const rank = (id: string): number => (id === BASELINE ? 0 : id === OURS ? 1 : id === INCUMBENT ? 2 : 3);
  const sorted = [...ids].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const shift = (rep - 1) % Math.max(1, sorted.length);
  return [...sorted.slice(shift), ...sorted.slice(0, shift)];
}

function machine(): string {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((cpu) => cpu.model.trim()))].join(', ');
  return `${cpus.length} CPUs (${models}), ${(os.totalmem() / GiB).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()} ${os.arch()}`;
}

/** Versions of the contenders' packages, as `name version` (this library's own code is the checkout's). */
function packages(): string {
  const version = (name: string): string => {
    try {
      return (
        (JSON.parse(readFileSync(join(ROOT_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version ?? '?'
      );
    } catch {
      return 'not installed';
    }
  };
  return `@google-cloud/storage ${version('@google-cloud/storage')}`;
}

/** Where the chart of a report goes: beside it, `.md` replaced by `.svg`. */
function chartPath(report: string): string {
  return `${report.replace(/\.md$/, '')}.svg`;
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' / ');
}

/**
 * One small, unrecorded upload per contender against a new server, so that the server's code is warm (JIT, first
 * connections) before the first measured run: otherwise whichever contender runs first pays for it.
 */
async function warmUp(server: ServerProcess, childScript: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const name = `warm-up/${id}-${Date.now()}`;
    const result = await runChild(
      childScript,
      {
        contender: id,
        endpoint: server.url,
        bucket: BUCKET,
        name,
        size: WARM_UP.size,
        writeSize: WARM_UP.writeSize,
        chunkSize: WARM_UP.chunkSize,
      },
      60_000,
    );
    await server.stats(BUCKET, name);
    if (!result.ok) process.stdout.write(`warning: the warm-up of ${id} failed: ${result.error}\n`);
  }
}

/** Seconds before a run is killed, unless `--timeout` says otherwise: generous, it only catches hangs. */
function defaultTimeoutSeconds(scenario: Scenario, size: number): number {
  const paced = pacedSeconds(scenario, size);
  if (paced !== undefined) return 60 + 2 * paced;
  return 60 + ((scenario.concurrency?.streams ?? 1) * size) / (4 * MiB);
}

/** One measured run: a fresh child process, then what the server saw of it. */
async function runOnce(server: ServerProcess, childScript: string, cell: Cell, rep: number, timeoutMs: number): Promise<RunRecord> {
  const { scenario, size, contenderId } = cell;
  const name = `s${scenario.id}/${contenderId}/${rep}-${Date.now()}`;
  try {
    await server.mark();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { rep, result: { ok: false, contender: cell.contenderName, error: `the server is not answering: ${message}` } };
  }
  const concurrency = scenario.concurrency;
  const request: ChildRequest = {
    contender: contenderId,
    endpoint: server.url,
    bucket: BUCKET,
    name,
    size,
    writeSize: scenario.writeSize,
    chunkSize: scenario.chunkSize,
    memoryLimit: concurrency?.memoryLimit,
    maxUncommittedMs: scenario.maxUncommittedMs,
    parallel: scenario.parts?.parallel,
    partSize: scenario.parts?.partSize,
    concurrency: concurrency === undefined ? undefined : { streams: concurrency.streams, bytesPerSecond: concurrency.bytesPerSecond },
  };
  const result = await runChild(childScript, request, timeoutMs);
  const run: RunRecord = { rep, result };
  const names = concurrency === undefined ? [name] : Array.from({ length: concurrency.streams }, (_, i) => `${name}/${i}`);
  try {
    run.server = await server.stats(BUCKET, concurrency === undefined ? name : names);
    if (concurrency !== undefined) {
      if (result.ok) checkObjects(run, names, size);
    } else {
      const stored = run.server.object;
      if (result.ok && stored?.size !== size) {
        run.error = `the server has ${stored === null ? 'no object' : `an object of ${stored.size} bytes`}, expected ${size}`;
      }
    }
  } catch (error) {
    run.error = `server stats: ${error instanceof Error ? error.message : String(error)}`;
  }
  return run;
}

/**
 * A many-stream run: every object must be on the server with the size and CRC32C its source wrote. Counts the
 * correct ones into `run.objectsCorrect`; any other makes the run a failure.
 */
function checkObjects(run: RunRecord, names: readonly string[], size: number): void {
  const { result, server } = run;
  if (!result.ok || server === undefined) return;
  const written = result.streams?.crc32c ?? [];
  const problems: string[] = [];
  let correct = 0;
  names.forEach((_, i) => {
    const stored = server.objects[i] ?? null;
    const crc = written[i] ?? null;
    let problem: string | undefined;
    if (crc === null) problem = 'its upload failed';
    else if (stored === null) problem = 'the server has no object';
    else if (stored.size !== size) problem = `the server has ${stored.size} bytes, expected ${size}`;
    else if (stored.crc32c !== crc) problem = `the server's CRC32C is ${stored.crc32c}, the source's ${crc}`;
    if (problem === undefined) correct += 1;
    else if (problems.length < 3) problems.push(`stream ${i}: ${problem}`);
  });
  run.objectsCorrect = correct;
  if (correct < names.length) {
    const reported = result.streams?.errors ?? [];
    run.error = `${names.length - correct} of ${names.length} objects wrong (${[...problems, ...reported].join('; ')})`;
  }
}

interface ReportContext {
  settings: Settings;
  commandLine: string;
  startedAt: Date;
  loadAtStart: string;
  finished: boolean;
}

/**
 * A line naming the other reports beside `out` (\`RESULTS-*.md\`: repeats, the reader's benchmark, comparisons
 * written by hand), so that a regenerated report still leads to them; empty when there are none.
 */
function companionReports(out: string): string {
  const dir = dirname(out);
  const own = basename(out);
  const others = readdirSync(dir)
    .filter((file) => /^RESULTS-.*\.md$/.test(file) && file !== own)
    .sort();
  return others.length === 0 ? '' : `Other reports beside this one: ${others.map((file) => `[${file}](${file})`).join(', ')}.\n\n`;
}

function writeReport(context: ReportContext, cells: readonly Cell[]): void {
  const { settings } = context;
  const targets = evaluateTargets(cells);
  const sizeOf = (s: Scenario): number => (settings.quick ? s.size / QUICK_DIVISOR : s.size);
  const scenarioRows = settings.scenarios
    .map(
      (s) =>
        `| S${s.id} | ${describeStreams(s, sizeOf(s))} | ${formatBytes(sizeOf(s))} | ${formatBytes(s.writeSize)} | ${s.chunkSize === undefined ? 'default' : formatBytes(s.chunkSize)} | ` +
        `${s.latencyMs} ms | ${s.contenders?.join(', ') ?? 'all'} | ${s.purpose} |`,
    )
    .join('\n');
  const single = cells.filter((cell) => !isConcurrent(cell));
  const many = cells.filter(isConcurrent);
  const contenderRows = [...settings.contenders]
    .map(([id, contender]) => `- **${contender.name}** (\`bench/contenders/${id}.ts\`): ${contender.description}`)
    .join('\n');
  const text = `# Benchmark results

${context.finished ? '' : '**Incomplete: the benchmark is still running or was interrupted.**\n\n'}- Command: \`${context.commandLine}\`
- Date: ${context.startedAt.toISOString()}
- Machine: ${machine()}
- Load average (1/5/15 min): ${context.loadAtStart} at start, ${loadAverage()} at the end
- Node: ${process.version}
- Packages: ${packages()}
- Mode: ${settings.quick ? `**quick** (object sizes divided by ${QUICK_DIVISOR}, so paced streams run 1/${QUICK_DIVISOR} as long; indicative only, the targets are defined on the full sizes)` : 'full sizes'}; ${settings.repeat} run(s) per cell, ${settings.repeat > 1 ? 'medians shown' : 'single run shown'}

${companionReports(settings.out)}How to read this: see [README.md](README.md). In short: MiB/s over the whole upload (session open to verified object),
CPU = user + system seconds of the client process over the same window, peak RSS = the kernel's high-water mark of
the client process (\`VmHWM\`; node and the contender's modules included: compare the **RSS Δ** columns). Every run
is a fresh plain-node process; the server runs in its own process and is not counted.

## Results

${
  single.length === 0
    ? 'No single-stream scenario in this run.'
    : `![Throughput and peak RSS per scenario, medians: ${[...new Set(single.map((cell) => cell.contenderName))].join(', ')}](${chartPath(basename(settings.out))})

${resultsTable(single)}`
}
${
  many.length === 0
    ? ''
    : `
## Many streams in one process (issues 14 and 15)

All the streams of a run in one process, started together; objects checked on the server (size and CRC32C of what
each source wrote). RSS growth = peak RSS minus the RSS just before the first stream started (node, modules and
sources loaded), garbage included; per stream = that over the stream count. At risk per stream (issue 15): the
most bytes a stream's source had written that the server had not confirmed, sampled on every write and every commit
the contender reported (ours: \`progress\` events' \`bytesCommitted\`); max and median over the streams; n/a where
the contender reports no confirmed offset (@google-cloud/storage: see README.md). The note gives ours' pool peak
(\`peakBytesHeld\`, its own count of the blocks it held) and, for every contender, what the memory was made of at
the highest RSS sampled every 25 ms (\`bench/memory-sampler.ts\`), as growth over the baseline: V8's heap
(\`heapTotal\`: the objects in it, \`heapUsed\`, and the room V8 keeps for new ones) and Buffers (\`arrayBuffers\`: pooled blocks, and
the sources' written buffers that nothing holds but the garbage collector has not freed yet).

${concurrentTable(many)}
`
}
## Targets (issues 4, 14, 15, 23 and 25)

${targetsTable(targets)}

## Contenders

${contenderRows}

## Scenarios

| # | streams | object | writes | chunk | server latency | contenders | purpose |
|---|---|---:|---:|---:|---:|---|---|
${scenarioRows}

## Every run

${runsTable(cells)}
`;
  writeFileSync(settings.out, text);
  // The chart draws the single-stream matrix; many-stream runs have their own table and no bars.
  if (single.length > 0) writeFileSync(chartPath(settings.out), renderBenchChart(chartInputFromReport(text)));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const settings = await parseSettings(argv);
  const context: ReportContext = {
    settings,
    // NODE_OPTIONS reaches every child (contenders and server): it is part of what was measured.
    commandLine: [
      ...(process.env.NODE_OPTIONS ? [`NODE_OPTIONS=${JSON.stringify(process.env.NODE_OPTIONS)}`] : []),
      'npm run bench',
      ...(argv.length > 0 ? ['--', ...argv] : []),
    ].join(' '),
    startedAt: new Date(),
    loadAtStart: loadAverage(),
    finished: false,
  };
  process.stdout.write(`${context.commandLine}\n${machine()}, Node ${process.version}, load ${context.loadAtStart}\n`);

  const tree = buildTree(ROOT_DIR);
  process.once('exit', tree.remove);
  const childScript = tree.benchFile('child.js');
  // One server per latency and connection limit: both are the server process's options.
  const servers = new Map<string, ServerProcess>();
  const serverFor = async (latencyMs: number, connectionBytesPerSecond?: number): Promise<ServerProcess> => {
    const key = `${latencyMs}/${connectionBytesPerSecond ?? 'unlimited'}`;
    let server = servers.get(key);
    if (server !== undefined && !server.alive) {
      process.stdout.write(`warning: the server at ${server.url} died; starting another\n`);
      server = undefined;
    }
    if (server === undefined) {
      server = await ServerProcess.start(latencyMs, connectionBytesPerSecond);
      servers.set(key, server);
      const limit = connectionBytesPerSecond === undefined ? '' : `, ${formatBytes(connectionBytesPerSecond)}/s per connection`;
      process.stdout.write(
        `\nstarted a server${latencyMs > 0 ? ` with +${latencyMs} ms per response` : ''}${limit} at ${server.url}; warming it up\n`,
      );
      await warmUp(server, childScript, [...settings.contenders.keys()]);
    }
    return server;
  };

  const cells: Cell[] = [];
  let failures = 0;
  try {
    for (const scenario of settings.scenarios) {
      const size = settings.quick ? scenario.size / QUICK_DIVISOR : scenario.size;
      // The parallel contender runs only where a scenario names it: elsewhere it would be the single session again.
      const ids = [...settings.contenders.keys()].filter((id) =>
        scenario.contenders === undefined ? id !== OURS_PARALLEL : scenario.contenders.includes(id),
      );
      if (ids.length === 0) continue;
      await serverFor(scenario.latencyMs, scenario.connectionBytesPerSecond);
      const timeoutMs = (settings.timeoutSeconds ?? defaultTimeoutSeconds(scenario, size)) * 1000;
      process.stdout.write(`\nS${scenario.id}: ${describeScenario(scenario, size)} (${scenario.purpose})\n`);
      const scenarioCells = new Map<string, Cell>();
      for (const id of runOrder(ids, 1)) {
        const cell: Cell = { scenario, size, contenderId: id, contenderName: settings.contenders.get(id)?.name ?? id, runs: [] };
        scenarioCells.set(id, cell);
        cells.push(cell);
      }
      for (let rep = 1; rep <= settings.repeat; rep += 1) {
        for (const id of runOrder(ids, rep)) {
          const cell = scenarioCells.get(id);
          if (cell === undefined) continue;
          const server = await serverFor(scenario.latencyMs, scenario.connectionBytesPerSecond);
          const run = await runOnce(server, childScript, cell, rep, timeoutMs);
          if (runError(run) !== undefined) failures += 1;
          cell.runs.push(run);
          process.stdout.write(`${runLine(cell, run, settings.repeat)}\n`);
        }
      }
      const scenarioTable = scenario.concurrency === undefined ? resultsTable : concurrentTable;
      process.stdout.write(`\n${scenarioTable([...scenarioCells.values()])}\n`);
      writeReport(context, cells);
    }
  } finally {
    await Promise.all([...servers.values()].map((server) => server.close()));
    tree.remove();
  }

  context.finished = true;
  writeReport(context, cells);
  process.stdout.write(`\nTargets (issues 4, 14, 15, 23 and 25):\n${targetsTable(evaluateTargets(cells))}\n`);
  const shown = relative(ROOT_DIR, settings.out);
  const report = shown.startsWith('..') ? settings.out : shown;
  const chart = cells.some((cell) => !isConcurrent(cell)) ? ` and ${chartPath(report)}` : '';
  process.stdout.write(`\nWrote ${report}${chart}${failures > 0 ? `; ${failures} run(s) FAILED` : ''}\n`);
  if (failures > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
