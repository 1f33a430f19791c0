/** Helpers of the read tests: a reader on the local gRPC server, reading to the end, and awaiting a follower. */
import { createGcsReadStream, type GcsReadable, type GcsReadStreamOptions } from '../src/index.js';
import type { LocalGcs } from '../src/testing/index.js';
import { APPEND_BUCKET, FAST_RETRY } from './helpers.js';

/** A reader of `name` in the append bucket of `server`, with fast retries. */
export function openReader(server: LocalGcs, name: string, extra: Partial<GcsReadStreamOptions> = {}): GcsReadable {
  return createGcsReadStream({ bucket: APPEND_BUCKET, name, grpcEndpoint: server.grpc.address, retry: FAST_RETRY, ...extra });
}

/** Everything `stream` delivers, to its end. */
export async function readAll(stream: GcsReadable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** What a flowing reader delivered so far, `until(n)`: resolves once n bytes arrived (or the stream ended). */
export interface Collected {
  data(): Buffer;
  until(bytes: number): Promise<void>;
  /** Resolves at `end`, rejects with the stream's error. */
  readonly done: Promise<void>;
}

/** Collects what `stream` delivers, in flowing mode. */
export function collect(stream: GcsReadable): Collected {
  const parts: Buffer[] = [];
  let size = 0;
  let waiters: { bytes: number; resolve: () => void }[] = [];
  stream.on('data', (part: Buffer) => {
    parts.push(part);
    size += part.length;
    const ready = waiters.filter((w) => size >= w.bytes);
    waiters = waiters.filter((w) => size < w.bytes);
    for (const w of ready) w.resolve();
  });
  const done = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const settled = done.catch(() => undefined);
  return {
    data: () => Buffer.concat(parts),
    until: (bytes) =>
      size >= bytes ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => waiters.push({ bytes, resolve })), settled]),
    done,
  };
}

/** Resolves once `ready()` holds, checked on every change the local server announces. */
export function serverState(server: LocalGcs, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!ready()) return;
      server.activity.off('change', check);
      resolve();
    };
    server.activity.on('change', check);
    check();
  });
}
