/**
 * Progress on stderr. On a terminal: a cli-progress bar (bytes committed, rate, retries; total, percentage and ETA
 * when the size is known), redrawn in place. Elsewhere (logs, CI, pipes): one plain line every couple of seconds,
 * one per retry, and one at the end. The formatting is pure functions, so it is tested without a terminal.
 */
// cli-progress is CommonJS whose named exports Node cannot all detect: take the module object.
import cliProgress from 'cli-progress';

/** What the progress display is computed from. */
export interface ProgressSnapshot {
  /** Bytes GCS has confirmed (object offset). */
  bytesCommitted: number;
  /** Bytes taken from the source (object offset): what a crash now could lose is the difference. */
  bytesAccepted: number;
  /** Bytes already committed when this run started (non-zero when resuming). */
  bytesAtStart: number;
  /** Object size when known (a regular file), else undefined. */
  totalBytes: number | undefined;
  /** Time since this run started. */
  elapsedMs: number;
  /** Transient failures recovered from so far. */
  retries: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `1536` -> `1.5 KiB`; binary units, one decimal. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // Whole bytes below 1 KiB: a rate (bytes per second) is rarely a whole number.
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `0.42` -> `0.4s`; `42.2` -> `42s`; `65` -> `1m05s`; `3725` -> `1h02m`. */
export function formatDuration(seconds: number): string {
  if (seconds < 9.95) return `${Math.max(0, seconds).toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Average upload rate of this run, in bytes per second (0 before the first commit). */
export function rateOf(snapshot: ProgressSnapshot): number {
  const seconds = snapshot.elapsedMs / 1000;
  const bytes = snapshot.bytesCommitted - snapshot.bytesAtStart;
  return seconds > 0 && bytes > 0 ? bytes / seconds : 0;
}

/** The parts of a progress display, formatted. `percent` and `eta` only when the size is known. */
export interface ProgressFields {
  committed: string;
  /** `, 1.2 MiB accepted` while the source is ahead of GCS, else empty. */
  accepted: string;
  total: string | undefined;
  percent: string | undefined;
  rate: string;
  eta: string | undefined;
  retries: string;
}

/** Formats a snapshot into display fields. */
export function progressFields(snapshot: ProgressSnapshot): ProgressFields {
  const rate = rateOf(snapshot);
  const total = snapshot.totalBytes;
  const remaining = total === undefined ? 0 : Math.max(0, total - snapshot.bytesCommitted);
  return {
    committed: formatBytes(snapshot.bytesCommitted),
    accepted: snapshot.bytesAccepted > snapshot.bytesCommitted ? `, ${formatBytes(snapshot.bytesAccepted)} accepted` : '',
    total: total === undefined ? undefined : formatBytes(total),
    percent: total === undefined ? undefined : `${total === 0 ? 100 : Math.floor((snapshot.bytesCommitted / total) * 100)}%`,
    rate: `${formatBytes(rate)}/s`,
    eta: total === undefined ? undefined : remaining === 0 ? '0s' : rate > 0 ? formatDuration(remaining / rate) : '--',
    retries: `${snapshot.retries} ${snapshot.retries === 1 ? 'retry' : 'retries'}`,
  };
}

/** One plain progress line (no terminal control characters). */
export function formatProgressLine(snapshot: ProgressSnapshot): string {
  const f = progressFields(snapshot);
  const amount = `${f.total === undefined ? `${f.committed} committed` : `${f.committed} of ${f.total} committed (${f.percent})`}${f.accepted}`;
  const eta = f.eta === undefined ? '' : `, ETA ${f.eta}`;
  return `gcs-stream: ${amount}, ${f.rate}${eta}, ${f.retries}, ${formatDuration(snapshot.elapsedMs / 1000)} elapsed`;
}

/** The terminal bar's line; `bar` is the rendered bar glyphs (only shown when the size is known). */
export function formatBarLine(snapshot: ProgressSnapshot, bar: string): string {
  const f = progressFields(snapshot);
  if (f.total === undefined) {
    return `uploading | ${f.committed} committed${f.accepted} | ${f.rate} | ${f.retries} | ${formatDuration(snapshot.elapsedMs / 1000)}`;
  }
  return `uploading ${bar} ${f.percent} | ${f.committed} / ${f.total} | ${f.rate} | ETA ${f.eta} | ${f.retries}`;
}

/** Drives the display; every method is cheap and safe to call at any time. */
export interface ProgressReporter {
  /** GCS committed up to `bytesCommitted`; the source supplied up to `bytesAccepted`. */
  update(bytesCommitted: number, bytesAccepted?: number): void;
  /** A transient failure; `line` describes it (printed in plain mode). */
  retried(line: string): void;
  /** Stops redrawing; `finalLine` (if any) is printed once, on its own line. */
  stop(finalLine?: string): void;
  /** The current snapshot (for the final summary). */
  snapshot(): ProgressSnapshot;
}

/** How the reporter shows progress. */
export interface ProgressReporterOptions {
  /** Where to write; stderr in the CLI. */
  stream: NodeJS.WriteStream;
  /** `bar` on a terminal, `lines` otherwise, `none` for --quiet. */
  mode: 'bar' | 'lines' | 'none';
  totalBytes: number | undefined;
  bytesAtStart: number;
  /** Interval between plain lines. */
  intervalMs?: number;
  /** Reads the bytes taken from the source now (they move between commits). */
  bytesAccepted?: () => number;
}

/** Creates the reporter for `options.mode`. */
export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const startedAt = Date.now();
  let bytesCommitted = options.bytesAtStart;
  let bytesAccepted = options.bytesAtStart;
  let retries = 0;
  let stopped = false;
  const snapshot = (): ProgressSnapshot => ({
    bytesCommitted,
    bytesAccepted: Math.max(bytesAccepted, options.bytesAccepted?.() ?? 0, bytesCommitted),
    bytesAtStart: options.bytesAtStart,
    totalBytes: options.totalBytes,
    elapsedMs: Date.now() - startedAt,
    retries,
  });
  const write = (line: string): void => {
    if (options.mode !== 'none') options.stream.write(`${line}\n`);
  };

  let bar: cliProgress.SingleBar | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (options.mode === 'bar') {
    bar = new cliProgress.SingleBar({
      stream: options.stream,
      format: (barOptions, params) => formatBarLine(snapshot(), cliProgress.Format.BarFormat(params.progress, barOptions)),
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      hideCursor: true,
      // cli-progress redraws on its own timer too, so the rate and elapsed time move while a chunk is in flight.
      fps: 5,
    });
    bar.start(options.totalBytes ?? 0, bytesCommitted);
  } else if (options.mode === 'lines') {
    timer = setInterval(() => write(formatProgressLine(snapshot())), options.intervalMs ?? 2_000);
    timer.unref();
  }

  return {
    update(committed, accepted) {
      if (accepted !== undefined) bytesAccepted = Math.max(bytesAccepted, accepted);
      if (stopped || committed <= bytesCommitted) return;
      bytesCommitted = committed;
      bar?.update(committed);
    },
    retried(line) {
      retries += 1;
      if (stopped) return;
      if (bar) bar.update(bytesCommitted);
      else write(line);
    },
    stop(finalLine) {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      bar?.stop();
      if (finalLine !== undefined) write(finalLine);
    },
    snapshot,
  };
}
