/**
 * The local GCS server of the read benchmark (`bench/read.ts`), in its own process so that its CPU and memory never
 * count against the reader: JSON and gRPC, with one finalized object of `--size` bytes seeded. The first stdout line
 * is `{"url":..., "grpc":..., "bucket":..., "name":...}`; it exits when its stdin closes.
 */
import { parseArgs } from 'node:util';
import { startLocalGcs } from '../src/testing/index.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: String(1024 * 1024 * 1024) } } });
const size = Number(values.size);
const server = await startLocalGcs({ grpc: true, computeMd5: false });
const data = Buffer.allocUnsafe(size);
for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, Math.min(i, size - 4));
server.putObject('bench', 'read-1gib.bin', data);
process.stdout.write(`${JSON.stringify({ url: server.url, grpc: server.grpc.address, bucket: 'bench', name: 'read-1gib.bin' })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
