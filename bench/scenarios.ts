/**
 * The matrix of issue 4: each scenario runs every contender (unless it names its own), each run in a fresh process.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Contender ids (file names in `bench/contenders/`) the report compares against. */
export const OURS = 'gcs-resumable-stream';
export const BASELINE = 'raw-put';
export const INCUMBENT = 'google-cloud-storage';

/** One row group of the matrix. */
export interface Scenario {
  id: number;
  /** Object size, bytes (before `--quick` scaling). */
  size: number;
  writeSize: number;
  chunkSize: number;
  /** Delay the server adds to every response (a separate server process when non-zero). */
  latencyMs: number;
  /** Only these contender ids run it; all of them when absent. */
  contenders?: readonly string[];
  /** Skipped by `--skip-large`. */
  large?: boolean;
  /** What it shows. */
  purpose: string;
}

export const SCENARIOS: readonly Scenario[] = [
  { id: 1, size: 1 * GiB, writeSize: 64 * KiB, chunkSize: 8 * MiB, latencyMs: 0, purpose: 'throughput and CPU with default-sized chunks' },
  { id: 2, size: 1 * GiB, writeSize: 1 * KiB, chunkSize: 8 * MiB, latencyMs: 0, purpose: 'per-write overhead: tiny writes (raw-put gets the same 1 KiB writes)' },
  { id: 3, size: 256 * MiB, writeSize: 64 * KiB, chunkSize: 256 * KiB, latencyMs: 0, purpose: 'per-request overhead: the smallest chunk GCS allows' },
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
];

/** `--quick` divides object sizes (not write or chunk sizes) by this. */
export const QUICK_DIVISOR = 16;

/** Human-readable byte count: `1 GiB`, `64 KiB`, `256 MiB`. */
export function formatBytes(bytes: number): string {
  for (const [unit, scale] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale} ${unit}`;
  }
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} B`;
}

/** `1 GiB, 64 KiB writes, 8 MiB chunks, +20 ms` */
export function describeScenario(scenario: Scenario, size: number): string {
  const latency = scenario.latencyMs > 0 ? `, +${scenario.latencyMs} ms per response` : '';
  return `${formatBytes(size)}, ${formatBytes(scenario.writeSize)} writes, ${formatBytes(scenario.chunkSize)} chunks${latency}`;
}
