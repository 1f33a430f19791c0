import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect } from 'vitest';
import type { ChaosSummary } from './soak/chaos-runner.js';
import {
  createGcsWriteStream,
  DEFAULT_PART_PREFIX,
  type GcsAppendStreamOptions,
  type GcsResumableWritable,
  type GcsWriteStreamOptions,
} from '../src/index.js';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const K256 = 256 * KiB;
export const BUCKET = 'test-bucket';

/** Retry settings in milliseconds so that fault tests finish quickly. */
export const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 6, stallTimeoutMs: 2_000 } as const;

/** Starts one local server for the file's tests and closes it afterwards. */
export function useLocalGcs(): { readonly server: LocalGcs } {
  const holder = {} as { server: LocalGcs };
  beforeAll(async () => {
    holder.server = await startLocalGcs();
  });
  afterAll(async () => {
    await holder.server.close();
  });
  return holder;
}

/**
 * The local server with its gRPC side, started before the file's tests and closed after them, and options of an
 * append stream to `zonal-bucket` on it with quick retries.
 */
export function useLocalAppendGcs(): {
  readonly server: LocalGcs;
  readonly options: (name: string, extra?: Partial<GcsAppendStreamOptions>) => GcsAppendStreamOptions;
} {
  const holder = {
    server: undefined as unknown as LocalGcs,
    options: (name: string, extra: Partial<GcsAppendStreamOptions> = {}): GcsAppendStreamOptions => ({
      bucket: APPEND_BUCKET,
      name,
      grpcEndpoint: holder.server.grpc.address,
      retry: { initialDelayMs: 1, maxDelayMs: 5 },
      ...extra,
    }),
  };
  beforeAll(async () => {
    holder.server = await startLocalGcs({ grpc: true });
  });
  afterAll(async () => {
    await holder.server.close();
  });
  return holder;
}

/** The bucket of {@link useLocalAppendGcs}'s options. */
export const APPEND_BUCKET = 'zonal-bucket';

// A prime-length random block: byte p of every test object is BLOCK[p % length], so misplaced or repeated chunks
// (whose offsets are multiples of 256 KiB) always change the content.
const BLOCK_LENGTH = 1_048_573;
const BLOCK = (() => {
  const out = Buffer.allocUnsafe(BLOCK_LENGTH);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK_LENGTH; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
})();

/** `size` bytes of the deterministic test content starting at object offset `pos`. */
export function contentAt(pos: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let written = 0;
  while (written < size) {
    const start = (pos + written) % BLOCK_LENGTH;
    const n = Math.min(size - written, BLOCK_LENGTH - start);
    BLOCK.copy(out, written, start, start + n);
    written += n;
  }
  return out;
}

/** SHA-256 of the deterministic content of `size` bytes. */
export function expectedDigest(size: number): string {
  const hash = createHash('sha256');
  for (let pos = 0; pos < size; pos += 4 * MiB) hash.update(contentAt(pos, Math.min(4 * MiB, size - pos)));
  return hash.digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A source of `size` bytes written `writeSize` at a time (a fresh buffer each time, as real sources do). */
export function source(size: number, writeSize: number | (() => number)): Readable {
  let pos = 0;
  return new Readable({
    read() {
      if (pos >= size) {
        this.push(null);
        return;
      }
      const want = typeof writeSize === 'number' ? writeSize : writeSize();
      const n = Math.min(Math.max(1, want), size - pos);
      const chunk = contentAt(pos, n);
      pos += n;
      this.push(chunk);
    },
  });
}

/**
 * Options pointing at the local server with fast retries; `extra` overrides. Requests keep to one chunk
 * (`adaptiveRequests: false`) and the window to two (`bufferChunks: 2`) so that faults aimed at a chunk's offset
 * find exactly that request whatever the timing; adaptive.test.ts and window.test.ts cover the adaptive sizing and
 * the growing window, under faults too, and the chaos test runs with the defaults.
 */
export function streamOptions(server: LocalGcs, name: string, extra: Partial<GcsWriteStreamOptions> = {}): GcsWriteStreamOptions {
  return {
    bucket: BUCKET,
    name,
    apiEndpoint: server.url,
    chunkSize: K256,
    adaptiveRequests: false,
    bufferChunks: 2,
    ...extra,
    retry: { ...FAST_RETRY, ...(extra.retry ?? {}) },
  };
}

export interface UploadOutcome {
  stream: GcsResumableWritable;
  error: unknown;
}

/** Pipes `size` bytes of test content into a new stream; resolves with the stream and the error, if any. */
export async function upload(
  server: LocalGcs,
  name: string,
  size: number,
  writeSize: number | (() => number),
  extra: Partial<GcsWriteStreamOptions> = {},
): Promise<UploadOutcome> {
  const stream = createGcsWriteStream(streamOptions(server, name, extra));
  try {
    await pipeline(source(size, writeSize), stream);
    return { stream, error: undefined };
  } catch (error) {
    return { stream, error };
  }
}

/** Objects of `bucket` under the default part prefix: the temporary objects parallel uploads left there. */
export function temporaryParts(server: LocalGcs, bucket: string = BUCKET): string[] {
  return server
    .listObjects(bucket)
    .map((object) => object.name)
    .filter((name) => name.startsWith(DEFAULT_PART_PREFIX));
}

/** Asserts (by throwing) that the stored object holds exactly the `size` bytes of test content. */
export function storedDigest(server: LocalGcs, name: string): string | undefined {
  const object = server.getObject(BUCKET, name);
  return object === undefined ? undefined : sha256(object.data);
}

let counter = 0;
/** A unique object name per test. */
export function uniqueName(label: string): string {
  counter += 1;
  return `${label}-${process.pid}-${counter}`;
}

/** A full garbage collection, so that a memory baseline holds no garbage from earlier work. */
const collectGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => undefined;
})();

/** Runs `work` while sampling memory every 5 ms; returns its result and the peak growth of RSS and ArrayBuffers. */
export async function measurePeakMemory<T>(work: () => Promise<T>): Promise<{ result: T; rssGrowth: number; bufferGrowth: number }> {
  collectGarbage();
  const baseline = process.memoryUsage();
  let peakRss = baseline.rss;
  let peakBuffers = baseline.arrayBuffers;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakBuffers = Math.max(peakBuffers, now.arrayBuffers);
  }, 5);
  try {
    const result = await work();
    return { result, rssGrowth: peakRss - baseline.rss, bufferGrowth: peakBuffers - baseline.arrayBuffers };
  } finally {
    clearInterval(sampler);
  }
}

/** Resolves once `stream` took `data` (its write callback fired without an error). */
export function written(stream: Writable, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (error) => (error ? reject(error) : resolve())));
}

/** Ends `stream` and resolves once it finished (rejects with its error). */
export function ended(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
  });
}

/**
 * What every chaos run in `npm test` must show: no upload corrupt, hung or failing with the wrong error (the bug
 * lines, with their replay commands, are printed first), and both recovery and clean failure exercised.
 */
export function expectSoundChaos(summary: ChaosSummary, bugLines: readonly string[], uploads: number): void {
  if (summary.bugs.length > 0) console.log(bugLines.join('\n'));
  expect(summary.bugs.map((report) => `seed=${report.seed} ${report.outcome}: ${report.detail}`)).toEqual([]);
  expect(summary.corrupted).toBe(0);
  expect(summary.hung).toBe(0);
  expect(summary.wrongError).toBe(0);
  // The run must actually exercise recovery and clean failure, not just happy paths.
  expect(summary.recovered).toBeGreaterThan(uploads / 4);
  expect(summary.failedCleanly).toBeGreaterThan(0);
}
