import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, type GcsWriteStreamOptions } from '../src/index.js';
import { BUCKET, contentAt, K256, sha256, source, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

function parallelOptions(name: string, extra: Partial<GcsWriteStreamOptions> = {}): GcsWriteStreamOptions {
  return streamOptions(ctx.server, name, { parallel: 3, partSize: K256, ...extra });
}

/** Objects under the default part prefix: temporary objects left in the bucket. */
function temporaries(): string[] {
  return ctx.server
    .listObjects(BUCKET)
    .map((object) => object.name)
    .filter((name) => name.startsWith('gcs-stream-parts/'));
}

describe('parallel uploads: sources of one part', () => {
  it('a source of at most partSize bytes becomes one ordinary object, with no temporary objects and no compose', async () => {
    for (const size of [0, 1, K256 - 1, K256]) {
      const name = uniqueName(`small-${size}`);
      const stream = createGcsWriteStream(
        parallelOptions(name, { contentType: 'text/plain', metadata: { cacheControl: 'no-cache', metadata: { k: 'v' } } }),
      );
      const checkpoints: unknown[] = [];
      stream.on('checkpoint', (c) => checkpoints.push(c));
      await pipeline(source(size, 10_000), stream);
      const stored = ctx.server.getObject(BUCKET, name)!;
      expect(sha256(stored.data)).toBe(sha256(contentAt(0, size)));
      expect(stored.resource.contentType).toBe('text/plain');
      expect(stored.resource.cacheControl).toBe('no-cache');
      expect(stored.resource.metadata).toEqual({ k: 'v' });
      expect(stored.resource.componentCount).toBeUndefined();
      expect(stream.bytesCommitted).toBe(size);
      expect(stream.leftovers).toEqual([]);
      expect(checkpoints).toEqual([]);
    }
    expect(temporaries()).toEqual([]);
    expect(ctx.server.requests.some((r) => r.path.includes('/compose'))).toBe(false);
  });

  it('a declared size of at most partSize is one ordinary object too', async () => {
    const name = uniqueName('small-sized');
    await pipeline(source(K256 - 7, 4096), createGcsWriteStream(parallelOptions(name, { size: K256 - 7 })));
    expect(sha256(ctx.server.getObject(BUCKET, name)!.data)).toBe(sha256(contentAt(0, K256 - 7)));
    expect(temporaries()).toEqual([]);
  });
});
