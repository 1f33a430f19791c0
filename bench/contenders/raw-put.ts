/**
 * The physical limit: the least any client must do to upload the stream, assuming it knew the size in advance.
 * One POST opens the session; one `node:http` PUT carries the whole object (`Content-Length: size`,
 * `Content-Range: bytes 0-(size-1)/size`), the source's writes going straight into the request (backpressure via
 * `write()`/`'drain'`). No chunking, no checksum, no retry, no copy: whatever a real client costs beyond this is
 * its overhead.
 */
import { request, type IncomingMessage, type RequestOptions } from 'node:http';
import type { Contender } from '../contender.js';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Reads a whole (small) response. */
function readReply(response: IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    response.on('data', (piece: Buffer) => pieces.push(piece));
    response.once('error', reject);
    response.once('end', () =>
      resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(pieces).toString('utf8') }),
    );
  });
}

/** Sends `options` with `body` (or nothing) and resolves with the reply. */
function exchange(url: URL, options: RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (response) => {
      readReply(response).then(resolve, reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}

function describe(reply: Reply): string {
  return `HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
}

export const contender: Contender = {
  name: 'raw-put',
  description: 'one POST to open the session, then one `node:http` PUT of the whole object with `Content-Length`; no chunks, no checksum',
  async run({ endpoint, bucket, name, size }, source) {
    if (size === 0) throw new Error('raw-put needs a non-empty object');
    const open = new URL(`/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`, endpoint);
    open.searchParams.set('uploadType', 'resumable');
    open.searchParams.set('name', name);
    const opened = await exchange(
      open,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=UTF-8',
          'x-upload-content-type': 'application/octet-stream',
          'x-upload-content-length': String(size),
        },
      },
      '{}',
    );
    const location = opened.headers.location;
    if (opened.status !== 200 || location === undefined) throw new Error(`opening the session failed: ${describe(opened)}`);

    const put = request(new URL(location), {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(size),
        'content-range': `bytes 0-${size - 1}/${size}`,
      },
    });
    const replied = new Promise<Reply>((resolve, reject) => {
      put.once('response', (response) => {
        readReply(response).then(resolve, reject);
        // An early answer (an error before the body is complete) ends the upload.
        if (response.statusCode !== 200) put.destroy();
      });
      put.once('error', reject);
    });
    const [answer, writing] = await Promise.allSettled([replied, source.writeTo(put)]);
    if (answer.status === 'rejected') throw answer.reason;
    const reply = answer.value;
    // The server's answer explains a failed write better than the write's own error does.
    if (reply.status !== 200) throw new Error(`the PUT failed: ${describe(reply)}`);
    if (writing.status === 'rejected') throw writing.reason;
    const stored = (JSON.parse(reply.body) as { size?: unknown }).size;
    if (stored !== String(size)) throw new Error(`the stored object has ${String(stored)} bytes, expected ${size}`);
  },
};
