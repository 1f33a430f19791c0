/**
 * `npm run demo:append`: a live log written as an appendable object over gRPC into the embedded local GCS server,
 * and read back through the JSON API while it is written, as `gcs-stream cat --follow` does: after every flush()
 * the reader sees exactly the bytes persisted so far; at the end the object is finalized.
 *
 *   npm run demo:append -- --lines 200 --flush-every 20
 */
import { parseArgs } from 'node:util';
import { createGcsAppendStream } from '../src/index.js';
import { startLocalGcs } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '100' },
    'flush-every': { type: 'string', default: '10' },
  },
});
const lineCount = Number(values.lines);
const flushEvery = Number(values['flush-every']);
const BUCKET = 'demo-bucket';
const NAME = 'logs/live.log';

const server = await startLocalGcs({ grpc: true });
const stream = createGcsAppendStream({ bucket: BUCKET, name: NAME, grpcEndpoint: server.grpc.address });

/** What a reader elsewhere sees: the JSON API's object resource and the bytes from `start` on. */
async function readFrom(start: number): Promise<{ text: string; finalized: boolean }> {
  const url = `${server.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(NAME)}`;
  const resource = (await (await fetch(url)).json()) as { size: string; timeFinalized?: string };
  if (Number(resource.size) <= start) return { text: '', finalized: resource.timeFinalized !== undefined };
  const media = await fetch(`${url}?alt=media`, { headers: { range: `bytes=${start}-` } });
  return { text: await media.text(), finalized: resource.timeFinalized !== undefined };
}

let written = '';
let read = '';
try {
  for (let i = 1; i <= lineCount; i++) {
    const line = `${new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString()} step ${i} of ${lineCount}\n`;
    stream.write(line);
    written += line;
    if (i % flushEvery !== 0 && i !== lineCount) continue;
    const persisted = await stream.flush();
    const { text, finalized } = await readFrom(read.length);
    read += text;
    process.stdout.write(`flushed ${persisted} bytes; the reader got ${text.length} new bytes (finalized: ${finalized})\n`);
    if (read !== written) throw new Error(`the reader saw ${read.length} bytes, ${written.length} were written`);
  }
  stream.end();
  await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
  const { finalized } = await readFrom(read.length);
  process.stdout.write(`finalized: ${finalized}; ${read.length} bytes read while written, every byte exactly once\n`);
  if (!finalized) process.exitCode = 1;
} finally {
  await server.close();
}
