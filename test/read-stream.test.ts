/**
 * createGcsReadStream over storage v2 BidiReadObject, through the public API against the local server's gRPC side:
 * whole objects and ranges of ordinary and appendable objects, generations, missing objects, and following an
 * appendable object to its finalization, also across streams the server cuts or serves as snapshots.
 */
import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';
import {
  createGcsAppendStream,
  createGcsReadStream,
  InvalidArgumentError,
  ObjectNotFoundError,
  UploadAbortedError,
  type GcsReadable,
  type GcsReadStreamOptions,
} from '../src/index.js';
import { APPEND_BUCKET, ended, MiB, useLocalAppendGcs, written } from './helpers.js';
import { collect, openReader, readAll } from './read-helpers.js';

const ctx = useLocalAppendGcs();

function reader(name: string, extra: Partial<GcsReadStreamOptions> = {}): GcsReadable {
  return openReader(ctx.server, name, extra);
}

describe('createGcsReadStream', () => {
  it('reads an ordinary (JSON-uploaded) object whole, in 2 MiB messages, and from a start offset', async () => {
    const data = randomBytes(9 * MiB + 123);
    const stored = ctx.server.putObject(APPEND_BUCKET, 'plain.bin', data);
    const whole = reader('plain.bin');
    expect((await readAll(whole)).equals(data)).toBe(true);
    expect(whole.generation).toBe(stored.resource.generation);
    expect(whole.finalized).toBe(true);
    expect(whole.bytesRead).toBe(data.length);
    for (const start of [0, 1, 2 * MiB, 4 * MiB + 5, data.length - 1, data.length]) {
      const part = reader('plain.bin', { start });
      expect((await readAll(part)).equals(data.subarray(start))).toBe(true);
      expect(part.bytesRead).toBe(data.length - start);
    }
  });

  it('reads an empty object', async () => {
    ctx.server.putObject(APPEND_BUCKET, 'empty.bin', Buffer.alloc(0));
    const stream = reader('empty.bin');
    expect((await readAll(stream)).length).toBe(0);
    expect(stream.finalized).toBe(true);
  });

  it('reads the given generation, and fails with ObjectNotFoundError for a missing object or generation', async () => {
    const first = ctx.server.putObject(APPEND_BUCKET, 'gen.bin', Buffer.from('one'));
    await expect(readAll(reader('gen.bin', { generation: String(BigInt(first.resource.generation) + 1n) }))).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
    expect((await readAll(reader('gen.bin', { generation: first.resource.generation }))).toString()).toBe('one');
    const missing = readAll(reader('no-such-object'));
    await expect(missing).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(missing).rejects.toMatchObject({ code: 'ERR_GCS_READ_OBJECT_NOT_FOUND', objectName: 'no-such-object' });
  });

  it('without follow, reads the bytes an unfinalized appendable object holds, then ends', async () => {
    const writer = createGcsAppendStream({ bucket: APPEND_BUCKET, name: 'unfinalized.log', grpcEndpoint: ctx.server.grpc.address });
    const piece = randomBytes(3 * MiB);
    await written(writer, piece);
    await writer.flush();
    const stream = reader('unfinalized.log');
    expect((await readAll(stream)).equals(piece)).toBe(true);
    expect(stream.finalized).toBe(false);
    await ended(writer);
  });

  it('follows an appendable object while it is written, to its finalization, with every byte once', async () => {
    const name = 'follow.log';
    const writer = createGcsAppendStream({ bucket: APPEND_BUCKET, name, grpcEndpoint: ctx.server.grpc.address });
    await writer.flush();
    const follower = reader(name, { follow: true, pollMs: 5 });
    const seen = collect(follower);
    let expected = Buffer.alloc(0);
    for (const size of [10, 5 * MiB + 3, 1, 300_000]) {
      const piece = randomBytes(size);
      await written(writer, piece);
      await writer.flush();
      expected = Buffer.concat([expected, piece]);
      await seen.until(expected.length);
      expect(seen.data().equals(expected)).toBe(true);
      expect(follower.finalized).toBe(false);
    }
    await ended(writer);
    await seen.done;
    expect(seen.data().equals(expected)).toBe(true);
    expect(follower.finalized).toBe(true);
    expect(follower.bytesRead).toBe(expected.length);
  });

  it('stops with UploadAbortedError when its signal aborts while following', async () => {
    const writer = createGcsAppendStream({ bucket: APPEND_BUCKET, name: 'aborted.log', grpcEndpoint: ctx.server.grpc.address });
    await written(writer, Buffer.from('abc'));
    await writer.flush();
    const controller = new AbortController();
    const follower = reader('aborted.log', { follow: true, pollMs: 2, signal: controller.signal });
    const seen = collect(follower);
    await seen.until(3);
    controller.abort();
    await expect(seen.done).rejects.toBeInstanceOf(UploadAbortedError);
    expect(follower.bytesRead).toBe(3);
    writer.destroy();
  });

  it('refuses invalid options before connecting', () => {
    const base = { bucket: APPEND_BUCKET, name: 'x', grpcEndpoint: '127.0.0.1:1' };
    expect(() => createGcsReadStream({ ...base, start: -1 })).toThrow(InvalidArgumentError);
    expect(() => createGcsReadStream({ ...base, generation: 'abc' })).toThrow(/generation must be a generation number/);
    expect(() => createGcsReadStream({ ...base, pollMs: Number.NaN })).toThrow(/pollMs/);
    expect(() => createGcsReadStream({ ...base, grpcEndpoint: 'no port' })).toThrow(/grpcEndpoint must be host:port/);
  });
});
