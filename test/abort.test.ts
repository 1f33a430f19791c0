import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, UploadAbortedError } from '../src/index.js';
import { contentAt, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

/** `good` bytes of content, then (once `fail` resolves) an error. */
function failingSource(good: number, fail: Promise<unknown>): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= good) {
        void fail.then(() => this.destroy(new Error('source exploded')));
        return;
      }
      const n = Math.min(64 * 1024, good - sent);
      this.push(contentAt(sent, n));
      sent += n;
    },
  });
}

describe('errors and aborts before end() never finalize the object', () => {
  it('an error in the source cancels the session and leaves no object', async () => {
    const name = uniqueName('source-error');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    const cancelledBefore = ctx.server.cancelledSessions;
    // The source fails once the session exists (before that there is nothing to cancel: an unused session expires).
    await expect(pipeline(failingSource(3 * K256 + 10, once(stream, 'session')), stream)).rejects.toThrow('source exploded');
    // Node 20 settles the pipeline before the stream's 'close', Node 22+ after it: wait only for one still to come.
    if (!stream.closed) await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    expect(stream.destroyed).toBe(true);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
    expect(ctx.server.cancelledSessions).toBe(cancelledBefore + 1);
  });

  it('destroy() mid-upload cancels the session, emits close without error, and leaves no object', async () => {
    const name = uniqueName('destroy');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    const errors: unknown[] = [];
    stream.on('error', (e) => errors.push(e));
    stream.write(contentAt(0, 2 * K256));
    await once(stream, 'progress');
    stream.destroy();
    await once(stream, 'close');
    expect(errors).toEqual([]);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
  });

  it('destroy(err) emits an UploadAbortedError carrying err', async () => {
    const name = uniqueName('destroy-err');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    stream.write(contentAt(0, 1000));
    const cause = new Error('caller gave up');
    stream.destroy(cause);
    const [error] = (await once(stream, 'error')) as [UploadAbortedError];
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect(error.cause).toBe(cause);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
  });

  it('an aborted signal before end() fails the stream and leaves no object, even after end() is called', async () => {
    const name = uniqueName('signal');
    const controller = new AbortController();
    const stream = createGcsWriteStream(streamOptions(ctx.server, name, { signal: controller.signal }));
    stream.write(contentAt(0, K256 + 5));
    await once(stream, 'progress');
    controller.abort();
    stream.end(contentAt(K256 + 5, 10));
    const [error] = (await once(stream, 'error')) as [Error];
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
  });

  it('abort while waiting in backoff stops promptly and cancels', async () => {
    const name = uniqueName('abort-backoff');
    ctx.server.inject({ match: { kind: 'chunk', object: name, times: Infinity }, action: { type: 'status', status: 503 } });
    const controller = new AbortController();
    const stream = createGcsWriteStream(
      streamOptions(ctx.server, name, {
        signal: controller.signal,
        retry: { initialDelayMs: 60_000, maxDelayMs: 60_000, maxAttempts: 10 },
      }),
    );
    stream.on('retry', () => controller.abort());
    stream.end(contentAt(0, 100));
    const [error] = (await once(stream, 'error')) as [Error];
    expect(error).toBeInstanceOf(UploadAbortedError);
    expect(storedDigest(ctx.server, name)).toBeUndefined();
    ctx.server.clearFaults();
  });
});

describe('destroy() after end()', () => {
  it('is an error (pipeline rejects) unless the upload had completed, and never leaves an unreported object', async () => {
    for (const delayTicks of [0, 1, 5]) {
      const name = uniqueName(`destroy-after-end-${delayTicks}`);
      const stream = createGcsWriteStream(streamOptions(ctx.server, name));
      const input = Readable.from([contentAt(0, 2 * K256 + 3)]);
      const done = pipeline(input, stream).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      // Destroy while _final runs: right after the source ended (end() follows on the same tick).
      input.once('end', () => {
        let ticks = delayTicks;
        const later = (): void => {
          if (ticks-- > 0) setImmediate(later);
          else stream.destroy();
        };
        later();
      });
      const result = await done;
      if (result === 'resolved') {
        expect(storedDigest(ctx.server, name)).toBeDefined();
      } else {
        expect(result).toBeInstanceOf(UploadAbortedError);
        // An object exists only if the upload had completed, and then the stream says so.
        if (storedDigest(ctx.server, name) !== undefined) expect(stream.object).toBeDefined();
      }
    }
  });
});
