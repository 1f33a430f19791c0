/**
 * An HTTP server that streams each request body straight into GCS: `PUT /NAME` stores the body as gs://BUCKET/NAME
 * and answers 201 with the object's generation. Memory stays at the stream's buffer (here 2 x 8 MiB) per request,
 * whatever the body's size; a client that disconnects mid-body leaves no object behind.
 *
 *   npx tsx examples/http-body-to-gcs.ts --bucket BUCKET [--port 8080] [--endpoint URL]
 *   curl -T backup.tar http://127.0.0.1:8080/backups/backup.tar
 */
import { createServer, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGcsWriteStream, type GcsUploadError } from '../src/index.js'; // in your project: 'gcs-resumable-stream'

const { values } = parseArgs({
  options: { bucket: { type: 'string' }, port: { type: 'string', default: '8080' }, endpoint: { type: 'string' } },
});
const bucket = values.bucket ?? 'my-bucket';

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  if (req.method !== 'PUT') return reply(res, 405, { error: 'use PUT /OBJECT-NAME' });
  let name: string;
  let upload;
  try {
    name = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname.slice(1));
    upload = createGcsWriteStream({ bucket, name, apiEndpoint: values.endpoint, contentType: req.headers['content-type'] });
  } catch (error) {
    req.resume(); // a malformed or invalid object name: nothing was sent to GCS
    return reply(res, 400, { error: (error as Error).message });
  }
  pipeline(req, upload).then(
    () => reply(res, 201, { name, generation: upload.object?.generation, size: upload.object?.size, crc32c: upload.object?.crc32c }),
    // The session was cancelled. If the client went away mid-body, there is no one left to answer.
    (error: GcsUploadError) => reply(res, 502, { error: error.code ?? 'ERR_UNKNOWN', message: error.message }),
  );
});

server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : values.port}`);
});
process.on('SIGTERM', () => server.close());
