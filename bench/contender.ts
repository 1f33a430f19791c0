/**
 * The plug-in interface of the benchmark: every file in `bench/contenders/` exports one `contender`. A run of a
 * many-stream scenario calls `run()` once per stream, all at once, in one process.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchSource } from './source.js';

/** What one run uploads, and where. */
export interface ContenderRunOptions {
  /** The local server's base URL, `http://127.0.0.1:PORT`: the JSON API endpoint. */
  endpoint: string;
  bucket: string;
  /** Object name, unique per run. */
  name: string;
  /** Bytes the source yields (the object's size). */
  size: number;
  /** Bytes per `write()` of the source. */
  writeSize: number;
  /** Bytes per request for contenders that upload in chunks; ignored by `raw-put`. Absent: the contender's default. */
  chunkSize?: number;
  /**
   * A byte ceiling shared by every stream of the process (many-stream scenarios), for contenders that have one:
   * create it once per process and give it to every stream, as a user would. Absent: the contender's default.
   */
  memoryLimit?: number;
  /**
   * The bound on how long written bytes may stay uncommitted (ms), for contenders that have one (ours:
   * `maxUncommittedMs`). Absent: the contender's default.
   */
  maxUncommittedMs?: number;
  /** Part uploads in flight at once, for contenders that upload in parallel parts (issue 23). Absent: one stream. */
  parallel?: number;
  /** Bytes per part, with `parallel`. */
  partSize?: number;
}

/** What a contender tells the harness while it runs (issue 15: the data at risk). */
export interface RunObserver {
  /**
   * The server confirmed the object's first `bytesCommitted` bytes (ours: each `progress` event). Only for a count
   * the server gave: bytes sent are not bytes kept. A contender without one never calls it (the report says n/a).
   */
  committed(bytesCommitted: number): void;
}

/** A contender's own account of the memory its streams shared, e.g. a buffer pool's. */
export interface SharedMemoryStats {
  /** The most bytes it held at once. */
  peakBytesHeld: number;
  /** Its ceiling. */
  maxBytes: number;
}

/** One way of uploading a stream to GCS. */
export interface Contender {
  /** Shown in tables; may differ from the file name (`@google-cloud/storage` lives in `google-cloud-storage.ts`). */
  readonly name: string;
  /** One line for the report: what it does and how it is configured. */
  readonly description: string;
  /**
   * Uploads everything `source` yields (`source.writeTo(stream)`, which honours backpressure) as object `name`, and
   * resolves once the object is finalized and the contender has checked its size; rejects otherwise.
   * Heavy imports belong at the top of the module, not in here: `run()` is what the clock and CPU counter see.
   * `observer` hears of the commits the server confirmed, if the contender's library reports them.
   */
  run(options: ContenderRunOptions, source: BenchSource, observer: RunObserver): Promise<void>;
  /**
   * Optional: after a many-stream run, what the memory the streams shared held at most (ours: its `MemoryPool`'s
   * `peakBytesHeld`). Goes into the report beside the process's RSS; undefined if nothing was shared.
   */
  sharedMemory?(): SharedMemoryStats | undefined;
}

/** The directory of the plug-ins. */
export const CONTENDERS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'contenders');
/** `.ts` when running from the sources, `.js` in the transpiled tree of `build.ts`. */
const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** Ids of the plug-ins: their file names without the extension, sorted. */
export function listContenderIds(): string[] {
  return readdirSync(CONTENDERS_DIR)
    .filter((file) => file.endsWith(EXTENSION) && !file.endsWith('.d.ts'))
    .map((file) => basename(file, EXTENSION))
    .sort();
}

function isContender(value: unknown): value is Contender {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Contender>;
  return typeof candidate.name === 'string' && typeof candidate.description === 'string' && typeof candidate.run === 'function';
}

/** Imports `bench/contenders/<id>.ts` and checks that it exports a `contender`. */
export async function loadContender(id: string): Promise<Contender> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) throw new Error(`invalid contender id ${JSON.stringify(id)}`);
  const module = (await import(pathToFileURL(join(CONTENDERS_DIR, `${id}${EXTENSION}`)).href)) as { contender?: unknown };
  if (!isContender(module.contender)) {
    throw new Error(`bench/contenders/${id}.ts must export \`contender: Contender\` ({ name, description, run })`);
  }
  return module.contender;
}
