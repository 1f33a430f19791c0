/**
 * `npm run demo`: streams a few hundred MiB of generated data into the embedded local GCS server while it injects
 * faults (connection resets, 503s, partial commits, a lost final response, plus seeded random chaos), shows
 * progress, and ends by checking the stored object's CRC32C against the data that was generated.
 *
 *   npm run demo -- --size-mib 512 --seed 7
 */
import { crc32c } from '@node-rs/crc32';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGcsWriteStream } from '../src/index.js';
import { startLocalGcs } from '../src/testing/index.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '300' },
    'chunk-mib': { type: 'string', default: '8' },
    seed: { type: 'string', default: '42' },
    chaos: { type: 'string', default: '0.05' },
  },
});
const size = Number(values['size-mib']) * MiB;
const chunkSize = Number(values['chunk-mib']) * MiB;
const seed = Number(values.seed);

function crcToBase64(value: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out.toString('base64');
}

/** A source of `total` bytes of random-looking data in 64 KiB writes; computes its own CRC32C as it goes. */
function generated(total: number): { stream: Readable; crc: () => number } {
  const block = randomBytes(4 * MiB + 17);
  let pos = 0;
  let crc = 0;
  const stream = new Readable({
    read() {
      if (pos >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(64 * 1024, total - pos);
      const start = (pos * 31) % (block.length - n);
      const chunk = Buffer.from(block.subarray(start, start + n));
      crc = crc32c(chunk, crc);
      pos += n;
      this.push(chunk);
    },
  });
  return { stream, crc: () => crc };
}

async function main(): Promise<void> {
  const server = await startLocalGcs({
    chaos: {
      seed,
      probability: Number(values.chaos),
      kinds: ['reset', 'status-before', 'status-after', 'partial', 'drop-response', 'stall'],
    },
  });
  const chunkAt = (n: number) => n * chunkSize;
  server.inject({ match: { kind: 'chunk', offset: chunkAt(2) }, action: { type: 'reset' } });
  server.inject({ match: { kind: 'chunk', offset: chunkAt(5) }, action: { type: 'status', status: 503 } });
  server.inject({ match: { kind: 'chunk', offset: chunkAt(9) }, action: { type: 'partial', bytes: chunkSize / 4 } });
  server.inject({ match: { kind: 'final' }, action: { type: 'drop-response' } });

  console.log(`demo: ${size / MiB} MiB in ${chunkSize / MiB} MiB chunks to ${server.url} (local GCS, seed ${seed}, with injected faults)`);
  const source = generated(size);
  const upload = createGcsWriteStream({
    bucket: 'demo-bucket',
    name: 'backups/demo.bin',
    apiEndpoint: server.url,
    chunkSize,
    retry: { initialDelayMs: 20, maxDelayMs: 200, stallTimeoutMs: 2_000 },
  });
  const started = Date.now();
  let retries = 0;
  let lastLine = 0;
  const tty = process.stdout.isTTY;
  const report = (committed: number, final = false): void => {
    const now = Date.now();
    if (!final && now - lastLine < (tty ? 100 : 1000)) return;
    lastLine = now;
    const seconds = (now - started) / 1000;
    const pct = size === 0 ? 100 : (100 * committed) / size;
    const line = `  committed ${(committed / MiB).toFixed(0).padStart(5)} / ${size / MiB} MiB (${pct.toFixed(0).padStart(3)}%)  ${(committed / MiB / Math.max(seconds, 0.001)).toFixed(0)} MiB/s  retries ${retries}`;
    if (tty) process.stdout.write(`\r${line}${final ? '\n' : ''}`);
    else console.log(line);
  };
  upload.on('progress', (p) => report(p.bytesCommitted));
  upload.on('retry', (event) => {
    retries += 1;
    if (!tty) console.log(`  retry ${event.attempt} in ${event.delayMs} ms after: ${event.error.message}`);
  });
  await pipeline(source.stream, upload);
  report(upload.bytesCommitted, true);

  const stored = server.getObject('demo-bucket', 'backups/demo.bin');
  if (!stored) throw new Error('the object was not stored');
  const expected = crcToBase64(source.crc());
  const storedCrc = crcToBase64(crc32c(stored.data));
  console.log(`faults injected by the server: ${server.faultsInjected}; retries by the client: ${retries}`);
  console.log(`object size ${stored.data.length} bytes (expected ${size}), generation ${upload.object?.generation}`);
  console.log(`CRC32C of generated data ${expected}; of stored bytes ${storedCrc}; reported by GCS ${upload.object?.crc32c}`);
  await server.close();
  if (stored.data.length !== size || storedCrc !== expected || upload.object?.crc32c !== expected) {
    console.error('demo: MISMATCH');
    process.exitCode = 1;
    return;
  }
  console.log('demo: OK, the stored object is byte-identical to what was written');
}

main().catch((error: unknown) => {
  console.error('demo failed:', error);
  process.exitCode = 1;
});
