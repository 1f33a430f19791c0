/**
 * A live log into GCS: a child process's output (here a stand-in build that prints numbered lines) is piped into
 * an object as it is written, with a bound on what a crash can lose (`maxUncommittedMs`: every full 256 KiB block
 * is committed within that time) and a checkpoint after every commit. Kill it half-way and run the same command
 * again: it resumes the session from its checkpoint, checks that the re-run build's output starts with the bytes
 * already committed (sourceStart: 'beginning'), and completes the object with every byte exactly once.
 *
 *   npx tsx examples/stream-a-log.ts gs://BUCKET/OBJECT [--endpoint URL] [--checkpoint FILE] [--lines 40000]
 *     [--bound-ms 200] [--crash-after BYTES]
 *
 * --crash-after kills this process (SIGKILL: no cleanup at all) once that many bytes are committed, to try it out.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGcsWriteStream, type UploadCheckpoint } from '../src/index.js'; // in your project: 'gcs-resumable-stream'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    endpoint: { type: 'string' },
    checkpoint: { type: 'string' },
    lines: { type: 'string', default: '40000' },
    'bound-ms': { type: 'string', default: '200' },
    'crash-after': { type: 'string' },
  },
});
const destination = /^gs:\/\/([^/]+)\/(.+)$/.exec(positionals[0] ?? '');
if (destination === null) throw new Error('usage: stream-a-log.ts gs://BUCKET/OBJECT [options]');
const checkpointFile = values.checkpoint ?? 'stream-a-log.checkpoint.json';
const crashAfter = values['crash-after'] === undefined ? Infinity : Number(values['crash-after']);

// The stand-in build: numbered lines, a burst of 200 at a time with a short pause, like a compiler's output.
const build = `
const total = ${Number(values.lines)};
let line = 1;
const burst = () => {
  let text = '';
  for (let i = 0; i < 200 && line <= total; i++, line++) text += 'build step ' + line + ' of ' + total + ': ok\\n';
  process.stdout.write(text, () => (line <= total ? setTimeout(burst, 2) : process.exit(0)));
};
burst();
`;
const child = spawn(process.execPath, ['-e', build], { stdio: ['ignore', 'pipe', 'inherit'] });

// The checkpoint holds the session URI, a bearer capability: keep the file private.
const resume = existsSync(checkpointFile) ? (JSON.parse(readFileSync(checkpointFile, 'utf8')) as UploadCheckpoint) : undefined;
if (resume) console.error(`resuming: ${resume.bytesCommitted} bytes were committed before`);

const upload = createGcsWriteStream({
  bucket: destination[1]!,
  name: destination[2]!,
  apiEndpoint: values.endpoint,
  contentType: 'text/plain; charset=utf-8',
  maxUncommittedMs: Number(values['bound-ms']),
  // The build runs again from its start: its first bytes are checked against the committed ones and skipped.
  ...(resume ? { resume, sourceStart: 'beginning' as const } : {}),
});
upload.on('checkpoint', (checkpoint) => {
  writeFileSync(`${checkpointFile}.tmp`, JSON.stringify(checkpoint), { mode: 0o600 });
  renameSync(`${checkpointFile}.tmp`, checkpointFile);
  if (checkpoint.bytesCommitted >= crashAfter) {
    child.kill('SIGKILL');
    process.kill(process.pid, 'SIGKILL');
  }
});

await pipeline(child.stdout, upload);
rmSync(checkpointFile, { force: true });
console.log(JSON.stringify({ name: upload.name, size: upload.object?.size, generation: upload.object?.generation }));
