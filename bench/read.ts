/**
 * The reader's benchmark (issue 24), apart from the upload matrix: `npx tsx bench/read.ts [--flushes N] [--size BYTES]`.
 *
 * 1. Following latency: a writer appends a line and `flush()`es, at a random moment within the follower's poll
 *    period; the time from `flush()` resolving to `createGcsReadStream({ follow: true })` delivering those bytes,
 *    p50 and p99 over `--flushes` (default 1000) flushes, at `pollMs` 100 and 500. Target: p99 <= pollMs + 50 ms.
 * 2. Reading a finalized object of `--size` (default 1 GiB): MiB/s, CPU and RSS growth of `createGcsReadStream`
 *    against `@google-cloud/storage`'s `file.createReadStream()` over JSON on the same server. Target: growth <= 16 MiB.
 *
 * The server (bench/read-server.ts) runs in its own process. Not run by the test suite; it takes about ten minutes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { createGcsAppendStream, createGcsReadStream } from '../src/index.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { flushes: { type: 'string', default: '1000' }, size: { type: 'string', default: String(1024 * MiB) } },
});
const flushes = Number(values.flushes);
const size = Number(values.size);

interface ServerInfo {
  url: string;
  grpc: string;
  bucket: string;
  name: string;
}

const child = spawn(
  process.execPath,
  [...process.execArgv, new URL('./read-server.ts', import.meta.url).pathname, '--size', String(size)],
  {
    stdio: ['pipe', 'pipe', 'inherit'],
  },
);
const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
const server = JSON.parse(line) as ServerInfo;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Following latency at `pollMs`: milliseconds from each flush() resolving to the follower delivering its bytes. */
async function followLatency(pollMs: number): Promise<number[]> {
  const name = `follow-${pollMs}.log`;
  const writer = createGcsAppendStream({ bucket: server.bucket, name, grpcEndpoint: server.grpc });
  await writer.flush();
  const follower = createGcsReadStream({ bucket: server.bucket, name, follow: true, pollMs, grpcEndpoint: server.grpc });
  let delivered = 0;
  let waiting: { bytes: number; resolve: () => void } | undefined;
  follower.on('data', (bytes: Buffer) => {
    delivered += bytes.length;
    if (waiting !== undefined && delivered >= waiting.bytes) {
      waiting.resolve();
      waiting = undefined;
    }
  });
  const latencies: number[] = [];
  let written = 0;
  for (let i = 0; i < flushes; i++) {
    await pause(Math.random() * pollMs);
    const text = Buffer.from(`${new Date().toISOString()} flush ${i}\n`);
    writer.write(text);
    written += text.length;
    await writer.flush();
    const flushed = performance.now();
    if (delivered < written) await new Promise<void>((resolve) => (waiting = { bytes: written, resolve }));
    latencies.push(performance.now() - flushed);
  }
  writer.end();
  await once(follower, 'end');
  return latencies.sort((a, b) => a - b);
}

/** Reads the seeded object with `open()`; MiB/s, CPU seconds and RSS growth. */
async function readCase(open: () => NodeJS.ReadableStream): Promise<{ mibPerS: number; cpuS: number; rssGrowthMiB: number }> {
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let bytes = 0;
  for await (const chunk of open()) bytes += (chunk as Buffer).length;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  if (bytes !== size) throw new Error(`read ${bytes} bytes of ${size}`);
  return { mibPerS: bytes / MiB / seconds, cpuS: (used.user + used.system) / 1e6, rssGrowthMiB: (peak - rssBefore) / MiB };
}

try {
  process.stdout.write(
    `# Reader benchmark (${flushes} flushes; ${size / MiB} MiB object)\n\n| pollMs | p50 ms | p99 ms | target p99 |\n|---|---|---|---|\n`,
  );
  for (const pollMs of [100, 500]) {
    const sorted = await followLatency(pollMs);
    const p99 = percentile(sorted, 99);
    process.stdout.write(
      `| ${pollMs} | ${percentile(sorted, 50).toFixed(1)} | ${p99.toFixed(1)} | <= ${pollMs + 50} ${p99 <= pollMs + 50 ? 'met' : 'MISSED'} |\n`,
    );
  }
  const storage = new Storage({ apiEndpoint: server.url, projectId: 'bench' });
  process.stdout.write('\n| reader | MiB/s | CPU s | RSS growth MiB |\n|---|---|---|---|\n');
  const contenders: [string, () => NodeJS.ReadableStream][] = [
    ['createGcsReadStream (gRPC)', () => createGcsReadStream({ bucket: server.bucket, name: server.name, grpcEndpoint: server.grpc })],
    ['@google-cloud/storage createReadStream (JSON)', () => storage.bucket(server.bucket).file(server.name).createReadStream()],
  ];
  for (const [label, open] of contenders) {
    const result = await readCase(open);
    process.stdout.write(`| ${label} | ${result.mibPerS.toFixed(0)} | ${result.cpuS.toFixed(2)} | ${result.rssGrowthMiB.toFixed(1)} |\n`);
  }
} finally {
  child.stdin.end();
}
