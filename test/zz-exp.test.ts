import { pipeline } from 'node:stream/promises';
import { it, expect } from 'vitest';
import { createGcsWriteStream } from '../src/index.js';
import { BUCKET, K256, source, streamOptions, uniqueName, useLocalGcs } from './helpers.js';
const ctx = useLocalGcs();
it('exp', async () => {
  const name = uniqueName('exp');
  const stream = createGcsWriteStream(streamOptions(ctx.server, name, { parallel: 3, partSize: K256 }));
  const cps: unknown[] = [];
  stream.on('checkpoint', (c) => cps.push(c));
  const err = await pipeline(source(5 * K256 + 100, 10_000), stream).catch((e) => e);
  console.log(err?.message, err?.leftovers, cps.length, JSON.stringify(cps.at(-1)).slice(0, 300));
  console.log(ctx.server.listObjects(BUCKET).map((o) => o.name));
  console.log(ctx.server.requests.map((r) => `${r.method} ${r.kind} ${r.object ?? ''} ${r.contentRange ?? ''}`).join('\n'));
  expect(1).toBe(1);
});
