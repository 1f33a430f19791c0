/**
 * Following an appendable object with createGcsReadStream({ follow: true }) while a writer appends to it: to its
 * finalization across streams the server cuts (after each message, on a timer, all at once while idle) or serves as
 * snapshots of the object when they opened; deletion and replacement while following.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createGcsAppendStream, ObjectGoneError, type GcsAppendableWritable, type GcsReadStreamOptions } from '../src/index.js';
import { APPEND_BUCKET, ended, MiB, useLocalAppendGcs, written } from './helpers.js';
import { collect, openReader } from './read-helpers.js';

const ctx = useLocalAppendGcs();

afterEach(() => ctx.server.grpc.reads.configure({ streamLifetimeMs: Infinity, maxMessagesPerStream: Infinity, snapshot: false }));

function writer(name: string): GcsAppendableWritable {
  return createGcsAppendStream({ bucket: APPEND_BUCKET, name, grpcEndpoint: ctx.server.grpc.address });
}

/** The generation of the object `name` (an appendable object's, as the local server holds it). */
function generationOf(name: string): string | undefined {
  return ctx.server.grpc.appendable(APPEND_BUCKET, name)?.generation;
}

/** Appends `sizes` one flush at a time, awaiting the follower after each; then finalizes; checks every byte once. */
async function followThrough(
  name: string,
  sizes: number[],
  extra: Partial<GcsReadStreamOptions> = {},
  between?: () => void,
): Promise<void> {
  const out = writer(name);
  await written(out, Buffer.from('head\n'));
  await out.flush();
  const follower = openReader(ctx.server, name, { follow: true, pollMs: 2, ...extra });
  const seen = collect(follower);
  let expected = Buffer.from('head\n');
  await seen.until(expected.length);
  for (const size of sizes) {
    between?.();
    const piece = randomBytes(size);
    await written(out, piece);
    await out.flush();
    expected = Buffer.concat([expected, piece]);
    await seen.until(expected.length);
    expect(seen.data().length).toBe(expected.length);
  }
  await ended(out);
  await seen.done;
  expect(seen.data().equals(expected)).toBe(true);
  expect(follower.bytesRead).toBe(expected.length);
  expect(follower.finalized).toBe(true);
  expect(follower.generation).toBe(generationOf(name));
}

describe('following an appendable object', () => {
  it('reaches finalization when the server cuts every stream after one message, reopening with the read handle', async () => {
    ctx.server.grpc.reads.configure({ maxMessagesPerStream: 1 });
    const before = ctx.server.grpc.reads.streams.length;
    await followThrough('cut-each.log', [7, 5 * MiB + 1, 1, 2 * MiB, 100_000]);
    const streams = ctx.server.grpc.reads.streams.slice(before);
    expect(streams.filter((s) => s.status === 'UNAVAILABLE').length).toBeGreaterThan(1);
    // Reopens after a cut mid-data carry the read handle (the server then skips the metadata).
    expect(streams.some((s) => s.withHandle)).toBe(true);
  });

  it('reaches finalization when the server cuts streams on a short lifetime', async () => {
    ctx.server.grpc.reads.configure({ streamLifetimeMs: 15 });
    await followThrough('cut-timer.log', [3 * MiB, 11, 4 * MiB + 9, 2]);
  });

  it('sees growth when the server serves each stream as a snapshot of the object when it opened', async () => {
    ctx.server.grpc.reads.configure({ snapshot: true });
    await followThrough('snapshot.log', [1, 6 * MiB, 17, 3]);
  });

  it('survives every stream being cut while it waits for growth', async () => {
    await followThrough('cut-idle.log', [5, 3 * MiB, 8], {}, () => ctx.server.grpc.reads.cutAll());
  });

  it('never asks from an offset beyond the size the server reported (OUT_OF_RANGE would end the stream)', async () => {
    const before = ctx.server.grpc.reads.streams.length;
    await followThrough('in-range.log', [1, 2, 3 * MiB]);
    expect(ctx.server.grpc.reads.streams.slice(before).every((s) => s.status !== 'OUT_OF_RANGE')).toBe(true);
  });

  it('a follower starting beyond the current end waits for the object to reach it', async () => {
    const out = writer('start-ahead.log');
    await written(out, Buffer.from('0123'));
    await out.flush();
    const follower = openReader(ctx.server, 'start-ahead.log', { follow: true, pollMs: 2, start: 10 });
    const seen = collect(follower);
    await written(out, Buffer.from('456789abcdef'));
    await ended(out);
    await seen.done;
    expect(seen.data().toString()).toBe('abcdef');
    expect(follower.bytesRead).toBe(6);
  });

  it('fails with ObjectGoneError (deleted, bytesRead) when the object is deleted while followed', async () => {
    const out = writer('deleted.log');
    await written(out, Buffer.from('some bytes'));
    await out.flush();
    const follower = openReader(ctx.server, 'deleted.log', { follow: true, pollMs: 2 });
    const seen = collect(follower);
    await seen.until(10);
    ctx.server.deleteObject(APPEND_BUCKET, 'deleted.log');
    await expect(seen.done).rejects.toBeInstanceOf(ObjectGoneError);
    await expect(seen.done).rejects.toMatchObject({ code: 'ERR_GCS_READ_OBJECT_GONE', reason: 'deleted', bytesRead: 10 });
    out.destroy();
  });

  it('fails with ObjectGoneError (replaced) when another generation replaces the live one it took at open', async () => {
    const out = writer('replaced.log');
    await written(out, Buffer.from('old generation'));
    await out.flush();
    const follower = openReader(ctx.server, 'replaced.log', { follow: true, pollMs: 2 });
    const seen = collect(follower);
    await seen.until(14);
    const old = generationOf('replaced.log');
    const next = ctx.server.putObject(APPEND_BUCKET, 'replaced.log', Buffer.from('new'));
    await expect(seen.done).rejects.toMatchObject({
      name: 'ObjectGoneError',
      reason: 'replaced',
      bytesRead: 14,
      generation: old,
      liveGeneration: next.resource.generation,
    });
    expect(seen.data().toString()).toBe('old generation');
    out.destroy();
  });

  it('with a given generation, its replacement ends the read as deleted (that generation is gone)', async () => {
    const out = writer('pinned.log');
    await written(out, Buffer.from('pinned'));
    await out.flush();
    const follower = openReader(ctx.server, 'pinned.log', { follow: true, pollMs: 2, generation: generationOf('pinned.log') });
    const seen = collect(follower);
    await seen.until(6);
    ctx.server.putObject(APPEND_BUCKET, 'pinned.log', Buffer.from('other'));
    await expect(seen.done).rejects.toMatchObject({ name: 'ObjectGoneError', reason: 'deleted', bytesRead: 6 });
    out.destroy();
  });
});
