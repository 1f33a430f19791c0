/**
 * A file into GCS, with progress on stderr.
 *
 *   npx tsx examples/pipe-file.ts FILE gs://BUCKET/OBJECT [--endpoint URL]
 *
 * Without --endpoint the library uses STORAGE_EMULATOR_HOST if set, else Google Cloud Storage with Application
 * Default Credentials.
 */
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGcsWriteStream } from '../src/index.js'; // in your project: from 'gcs-resumable-stream'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { endpoint: { type: 'string' } } });
const [file, target] = positionals;
const destination = /^gs:\/\/([^/]+)\/(.+)$/.exec(target ?? '');
if (file === undefined || destination === null) {
  console.error('usage: pipe-file.ts FILE gs://BUCKET/OBJECT [--endpoint URL]');
  process.exit(2);
}

const size = statSync(file).size;
// Declaring the size makes a file that changes while it is read fail the upload instead of storing a torn copy.
const upload = createGcsWriteStream({ bucket: destination[1]!, name: destination[2]!, apiEndpoint: values.endpoint, size });
const started = Date.now();
upload.on('progress', ({ bytesCommitted }) => {
  const percent = size === 0 ? 100 : Math.floor((bytesCommitted / size) * 100);
  const mibPerSecond = bytesCommitted / 1048576 / Math.max(0.001, (Date.now() - started) / 1000);
  console.error(`${percent}% (${bytesCommitted} of ${size} bytes, ${mibPerSecond.toFixed(1)} MiB/s)`);
});
upload.on('retry', ({ attempt, delayMs, error }) => console.error(`retry ${attempt} in ${delayMs} ms after ${error.code}`));

// pipeline() destroys the upload if the file cannot be read: the session is cancelled, no partial object appears.
await pipeline(createReadStream(file), upload);
const { generation, crc32c } = upload.object!;
console.log(JSON.stringify({ bucket: upload.bucket, name: upload.name, size, generation, crc32c }));
