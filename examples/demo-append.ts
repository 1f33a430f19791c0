/**
 * `npm run demo:append`: a live log written as an appendable object over gRPC into the embedded local GCS server,
 * and followed while it is written by a second process with `createGcsReadStream({ follow: true })` (storage v2
 * `BidiReadObject`, as `gcs-stream cat --follow` does): after every flush() the follower delivers exactly the bytes
 * persisted so far; once the object is finalized the follower ends, having delivered every byte exactly once.
 *
 *   npm run demo:append -- --lines 200 --flush-every 20
 *
 * The follower is this file run again with `--follow HOST:PORT`: it prints the log on stdout and a summary on stderr.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createGcsAppendStream, createGcsReadStream } from '../src/index.js';
import { startLocalGcs } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '100' },
    'flush-every': { type: 'string', default: '10' },
    follow: { type: 'string' },
  },
});
const BUCKET = 'demo-bucket';
const NAME = 'logs/live.log';

if (values.follow !== undefined) {
  // The second process: follow the log until it is finalized.
  const reader = createGcsReadStream({ bucket: BUCKET, name: NAME, follow: true, pollMs: 20, grpcEndpoint: values.follow });
  for await (const bytes of reader) process.stdout.write(bytes as Buffer);
  process.stderr.write(`follower: ${reader.bytesRead} bytes of generation ${reader.generation}, finalized: ${reader.finalized}\n`);
} else {
  await writeAndFollow(Number(values.lines), Number(values['flush-every']));
}

async function writeAndFollow(lineCount: number, flushEvery: number): Promise<void> {
  const server = await startLocalGcs({ grpc: true });
  const stream = createGcsAppendStream({ bucket: BUCKET, name: NAME, grpcEndpoint: server.grpc.address });
  await stream.flush(); // the object exists (empty, appendable) before the follower opens it
  const follower = spawn(process.execPath, [...process.execArgv, process.argv[1] ?? '', '--follow', server.grpc.address], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let received = '';
  let summary = '';
  const waiting = new Set<() => void>();
  follower.stdout.setEncoding('utf8').on('data', (text: string) => {
    received += text;
    for (const wake of waiting) wake();
  });
  follower.stderr.setEncoding('utf8').on('data', (text: string) => (summary += text));
  const exited = new Promise<number | null>((resolve) => follower.on('exit', resolve));
  /** Resolves once the follower has printed `length` bytes. */
  const followerHas = (length: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (received.length < length) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      void exited.then(() => {
        waiting.delete(check);
        reject(new Error(`the follower exited: ${summary}`));
      });
      check();
    });

  let written = '';
  try {
    for (let i = 1; i <= lineCount; i++) {
      const line = `${new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString()} step ${i} of ${lineCount}\n`;
      stream.write(line);
      written += line;
      if (i % flushEvery !== 0 && i !== lineCount) continue;
      const persisted = await stream.flush();
      await followerHas(written.length);
      const finalized = server.grpc.appendable(BUCKET, NAME)?.finalized ?? false;
      process.stdout.write(`flushed ${persisted} bytes; the follower has printed ${received.length} (finalized: ${finalized})\n`);
      if (received !== written) throw new Error(`the follower printed ${received.length} bytes, ${written.length} were written`);
    }
    stream.end();
    await new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    const code = await exited;
    const finalized = code === 0 && /finalized: true/.test(summary) && received === written;
    process.stdout.write(`${summary.trim()}\n`);
    process.stdout.write(`finalized: ${finalized}; ${received.length} bytes read while written, every byte exactly once\n`);
    if (!finalized) process.exitCode = 1;
  } finally {
    follower.kill();
    await server.close();
  }
}
