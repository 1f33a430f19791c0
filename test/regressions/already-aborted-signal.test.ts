import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createGcsAppendStream, createGcsWriteStream, UploadAbortedError } from '../../src/index.js';
import { BUCKET, streamOptions, uniqueName, useLocalAppendGcs, useLocalGcs } from '../helpers.js';

// Issue 22, item 6: a signal aborted before the stream was created crashed the constructor with a TypeError
// (Node's Writable destroys at once on such a signal, before the subclass's private fields exist).

const ctx = useLocalGcs();
const append = useLocalAppendGcs();

describe('a signal already aborted when the stream is created', () => {
  it('createGcsWriteStream: the stream errors with UploadAbortedError, sends nothing and creates no object', async () => {
    const name = uniqueName('pre-aborted');
    const reason = new Error('cancelled by the caller');
    const before = ctx.server.requests.length;
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { signal: AbortSignal.abort(reason) }));
    // 'close' follows 'error' in the same tick: listen for both before either can fire.
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    const [error] = (await once(stream, 'error')) as [unknown];
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect((error as UploadAbortedError).cause).toBe(reason);
    await closed;
    expect(ctx.server.requests.length).toBe(before);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });

  it('createGcsAppendStream: the stream errors with UploadAbortedError, opens no stream and creates no object', async () => {
    const name = uniqueName('pre-aborted-append');
    const stream = createGcsAppendStream(append.options(name, { signal: AbortSignal.abort() }));
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.end(Buffer.from('never sent'));
    const [error] = (await once(stream, 'error')) as [unknown];
    expect(error).toBeInstanceOf(UploadAbortedError);
    await closed;
    expect(append.server.grpc.streams.length).toBe(0);
    expect(append.server.listObjects()).toHaveLength(0);
  });
});
