/**
 * The local GCS server of the benchmark, in its own process so that its CPU and memory never count against a
 * client: `node --import tsx bench/server.ts [--latency-ms N] [--connection-bytes-per-second N]` (issue 23: each
 * connection's request bodies read no faster than N bytes per second, GCS's per-stream cap).
 *
 * It keeps only sizes and CRC32Cs (`discardData: true`) and computes no MD5 (`computeMd5: false`). It still reads
 * every request body whole before answering, so while a `raw-put` runs it holds that object in memory (1 GiB in
 * scenario 1, 4 GiB in scenario 5).
 *
 * Protocol: the first stdout line is the server's URL. Then it answers JSON lines on stdin with one JSON line each:
 *   {"op":"mark"}                           -> {"op":"mark"}: starts counting the server's CPU for a run
 *   {"op":"stats","bucket":B,"name":N}      -> a ServerStats: the object and the requests made for it since the
 *                                              last stats; the object is then deleted
 *   {"op":"stats","bucket":B,"names":[..]}  -> the same for the objects of a many-stream run: each object in
 *                                              `objects` (in the order asked), the requests summed over them
 * It exits when its stdin closes (the harness ended, or died).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startLocalGcs, type RequestRecord } from '../src/testing/index.js';
import { DEFAULT_PART_PREFIX } from '../src/core/options.js';
import { peakRss } from './peak-rss.js';

/** What the server keeps of an object: its size and CRC32C (base64, as GCS gives it). */
export interface StoredObject {
  size: number;
  crc32c: string;
}

/** What the server saw of one run. */
export interface ServerStats {
  op: 'stats';
  /** The stored object, if the upload finalized it (the first one asked for, when asked for several). */
  object: StoredObject | null;
  /** Every object asked for, in the order asked. */
  objects: (StoredObject | null)[];
  /** Requests for these objects, by kind (`open`, `chunk`, `final`, `query`, `cancel`, ...). */
  requests: Record<string, number>;
  /** PUT requests, with or without a body. */
  puts: number;
  /** The largest request body, in bytes. */
  maxBodyBytes: number;
  /** Requests answered with something else than 200, 201 or 308 (faults, errors, aborted connections). */
  unexpected: string[];
  /** Server CPU since the last `mark`, in milliseconds. */
  cpuMs: number;
  /** Peak RSS of the server process so far, in bytes. */
  peakRss: number;
}

const { values } = parseArgs({
  options: { 'latency-ms': { type: 'string', default: '0' }, 'connection-bytes-per-second': { type: 'string' } },
});
const latencyMs = Number(values['latency-ms']);
const limit = values['connection-bytes-per-second'];
const server = await startLocalGcs({
  latencyMs,
  discardData: true,
  computeMd5: false,
  ...(limit === undefined ? {} : { connectionBytesPerSecond: Number(limit) }),
});
process.stdout.write(`${server.url}\n`);

let scanned = 0;
let cpuMark = process.cpuUsage();

function statsFor(bucket: string, names: readonly string[]): ServerStats {
  const wanted = new Set(names);
  const records: readonly RequestRecord[] = server.requests;
  const requests: Record<string, number> = {};
  let puts = 0;
  let maxBodyBytes = 0;
  const unexpected: string[] = [];
  for (; scanned < records.length; scanned += 1) {
    const record = records[scanned];
    if (record === undefined || record.bucket !== bucket || record.object === undefined) continue;
    // A parallel upload's requests go to its temporary parts (under the default partPrefix) and compose them.
    if (!wanted.has(record.object) && !record.object.startsWith(DEFAULT_PART_PREFIX)) continue;
    requests[record.kind] = (requests[record.kind] ?? 0) + 1;
    if (record.method === 'PUT') puts += 1;
    maxBodyBytes = Math.max(maxBodyBytes, record.bytesReceived);
    if (record.status !== 200 && record.status !== 201 && record.status !== 308 && !(record.method === 'DELETE' && record.status === 204)) {
      unexpected.push(`${record.method} ${record.kind} ${record.contentRange ?? ''} -> ${String(record.status)}`);
    }
  }
  const objects = names.map((name): StoredObject | null => {
    const stored = server.getObject(bucket, name);
    server.deleteObject(bucket, name);
    return stored === undefined ? null : { size: Number(stored.resource.size), crc32c: stored.resource.crc32c };
  });
  const cpu = process.cpuUsage(cpuMark);
  return {
    op: 'stats',
    object: objects[0] ?? null,
    objects,
    requests,
    puts,
    maxBodyBytes,
    unexpected,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRss: peakRss(),
  };
}

/** The object names a stats command asks for: `name`, or every string of `names`. */
function namesOf(command: { name?: unknown; names?: unknown }): string[] | undefined {
  if (typeof command.name === 'string') return [command.name];
  const { names } = command;
  if (!Array.isArray(names)) return undefined;
  const strings = names.filter((name): name is string => typeof name === 'string');
  return strings.length === names.length ? strings : undefined;
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let reply: unknown;
  try {
    const command = JSON.parse(line) as { op?: string; bucket?: string; name?: unknown; names?: unknown };
    const names = namesOf(command);
    if (command.op === 'mark') {
      cpuMark = process.cpuUsage();
      reply = { op: 'mark' };
    } else if (command.op === 'stats' && typeof command.bucket === 'string' && names !== undefined) {
      reply = statsFor(command.bucket, names);
    } else {
      reply = { op: 'error', error: `unknown command ${line}` };
    }
  } catch (error) {
    reply = { op: 'error', error: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
});
lines.once('close', () => {
  void server.close().finally(() => process.exit(0));
});
