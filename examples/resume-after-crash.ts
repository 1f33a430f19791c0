/**
 * Surviving a crash: after every commit the upload's checkpoint is written to CHECKPOINT (atomically: a temporary
 * file renamed over it). Run the same command again after a crash and it continues the same session from there,
 * sending only what GCS does not have yet; once the object exists the checkpoint is deleted.
 *
 *   npx tsx examples/resume-after-crash.ts FILE gs://BUCKET/OBJECT [--checkpoint FILE.checkpoint.json]
 *     [--endpoint URL] [--chunk-kib 8192] [--crash-after BYTES]
 *
 * --crash-after kills the process (SIGKILL: no cleanup at all) once that many bytes are committed, to try it out.
 */
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGcsWriteStream, type UploadCheckpoint } from '../src/index.js'; // in your project: 'gcs-resumable-stream'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    checkpoint: { type: 'string' },
    endpoint: { type: 'string' },
    'chunk-kib': { type: 'string', default: '8192' },
    'crash-after': { type: 'string' },
  },
});
const [file, target] = positionals;
const destination = /^gs:\/\/([^/]+)\/(.+)$/.exec(target ?? '');
if (file === undefined || destination === null) throw new Error('usage: resume-after-crash.ts FILE gs://BUCKET/OBJECT [options]');
const checkpointFile = values.checkpoint ?? `${file}.checkpoint.json`;
const crashAfter = values['crash-after'] === undefined ? Infinity : Number(values['crash-after']);

// The checkpoint holds the session URI, a bearer capability: keep the file private.
const resume = existsSync(checkpointFile) ? (JSON.parse(readFileSync(checkpointFile, 'utf8')) as UploadCheckpoint) : undefined;
if (resume) console.error(`resuming: ${resume.bytesCommitted} bytes were committed before`);

const upload = createGcsWriteStream({
  bucket: destination[1]!,
  name: destination[2]!,
  apiEndpoint: values.endpoint,
  chunkSize: Number(values['chunk-kib']) * 1024,
  resume,
});
upload.on('checkpoint', (checkpoint) => {
  writeFileSync(`${checkpointFile}.tmp`, JSON.stringify(checkpoint), { mode: 0o600 });
  renameSync(`${checkpointFile}.tmp`, checkpointFile);
  if (checkpoint.bytesCommitted >= crashAfter) process.kill(process.pid, 'SIGKILL');
});

// A resumed stream expects its source to start at the checkpoint's offset (the default sourceStart: 'checkpoint').
await pipeline(createReadStream(file, { start: resume?.bytesCommitted ?? 0 }), upload);
rmSync(checkpointFile, { force: true });
console.log(JSON.stringify({ name: upload.name, size: upload.object?.size, generation: upload.object?.generation }));
