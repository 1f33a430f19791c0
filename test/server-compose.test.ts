import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combineCrc32cs } from '../src/core/crc32c-combine.js';
import { createGcsWriteStream } from '../src/index.js';
import { crc32cToBase64, startLocalGcs, type LocalGcs, type StoredObject } from '../src/testing/index.js';
import { BUCKET, K256, MiB } from './helpers.js';

let gcs: LocalGcs;
beforeAll(async () => {
  gcs = await startLocalGcs();
});
afterAll(async () => {
  await gcs.close();
});

let counter = 0;
function uniqueName(base: string): string {
  counter += 1;
  return `${base}-${counter}`;
}

function objectUrl(name: string, rest = '', query: Record<string, string> = {}): string {
  const url = new URL(`${gcs.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(name)}${rest}`);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.toString();
}

interface ComposeBody {
  sourceObjects: { name: string; generation?: string; objectPreconditions?: { ifGenerationMatch?: string } }[];
  destination?: Record<string, unknown>;
}

async function compose(
  name: string,
  body: ComposeBody,
  query: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(objectUrl(name, '/compose', query), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function sources(...objects: StoredObject[]): ComposeBody['sourceObjects'] {
  return objects.map((object) => ({ name: object.name }));
}

/** `count` small objects named `${prefix}/0`, ... with random bytes. */
function putParts(prefix: string, count: number, size = 1000): StoredObject[] {
  return Array.from({ length: count }, (_, i) => gcs.putObject(BUCKET, `${prefix}/${i}`, randomBytes(size + i)));
}

describe('compose', () => {
  it('concatenates the sources in the order given, with the CRC32C of the concatenation and no MD5', async () => {
    const [a, b, c] = putParts(uniqueName('order'), 3) as [StoredObject, StoredObject, StoredObject];
    const name = uniqueName('order-result');
    const { status, json } = await compose(name, { sourceObjects: sources(c, a, b) });
    expect(status).toBe(200);
    const expected = Buffer.concat([c.data, a.data, b.data]);
    const stored = gcs.getObject(BUCKET, name)!;
    expect(stored.data.equals(expected)).toBe(true);
    expect(json).toMatchObject({
      name,
      bucket: BUCKET,
      size: String(expected.length),
      componentCount: 3,
      crc32c: crc32cToBase64(crc32c(expected)),
    });
    expect(json.md5Hash).toBeUndefined();
    // The CRC32C follows from the parts' CRC32Cs alone.
    const combined = combineCrc32cs([c, a, b].map((part) => ({ crc32c: crc32c(part.data), size: part.data.length })));
    expect(json.crc32c).toBe(crc32cToBase64(combined));
    expect(BigInt(String(json.generation))).toBeGreaterThan(BigInt(c.resource.generation));
  });

  it('composes composites (tiers): componentCount adds up, and more than 1024 components is refused with 400', async () => {
    const prefix = uniqueName('tiers');
    const parts = putParts(prefix, 32, 10);
    const tier = `${prefix}/tier-1`;
    expect((await compose(tier, { sourceObjects: sources(...parts) })).json.componentCount).toBe(32);
    const tierBytes = Buffer.concat(parts.map((part) => part.data));
    const two = `${prefix}/two`;
    const mixed = await compose(two, { sourceObjects: [{ name: tier }, { name: tier }, { name: parts[0]!.name }] });
    expect(mixed.status).toBe(200);
    expect(mixed.json.componentCount).toBe(65);
    expect(gcs.getObject(BUCKET, two)!.data.equals(Buffer.concat([tierBytes, tierBytes, parts[0]!.data]))).toBe(true);
    const full = `${prefix}/full`;
    const exactly1024 = await compose(full, { sourceObjects: Array.from({ length: 32 }, () => ({ name: tier })) });
    expect(exactly1024.json.componentCount).toBe(1024);
    const over = await compose(`${prefix}/over`, { sourceObjects: [{ name: full }, { name: parts[1]!.name }] });
    expect(over.status).toBe(400);
    expect(gcs.getObject(BUCKET, `${prefix}/over`)).toBeUndefined();
  });

  it('refuses 33 sources and none with 400', async () => {
    const parts = putParts(uniqueName('limits'), 33, 1);
    const name = uniqueName('limits-result');
    const tooMany = await compose(name, { sourceObjects: sources(...parts) });
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.json)).toMatch(/33.*32/);
    expect((await compose(name, { sourceObjects: [] })).status).toBe(400);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
  });

  it('answers 404 naming a missing source, and 404 for a source generation that is not live', async () => {
    const [a] = putParts(uniqueName('missing'), 1) as [StoredObject];
    const name = uniqueName('missing-result');
    const missing = await compose(name, { sourceObjects: [{ name: a.name }, { name: 'no/such/part' }] });
    expect(missing.status).toBe(404);
    expect(JSON.stringify(missing.json)).toContain(`${BUCKET}/no/such/part`);
    const stale = await compose(name, { sourceObjects: [{ name: a.name, generation: '1' }] });
    expect(stale.status).toBe(404);
    const live = await compose(name, { sourceObjects: [{ name: a.name, generation: a.resource.generation }] });
    expect(live.status).toBe(200);
    const refused = await compose(name, { sourceObjects: [{ name: a.name, objectPreconditions: { ifGenerationMatch: '7' } }] });
    expect(refused.status).toBe(412);
  });

  it('checks the destination preconditions (ifGenerationMatch, 0 included, and ifMetagenerationMatch): 412 leaves it alone', async () => {
    const [a, b] = putParts(uniqueName('pre'), 2) as [StoredObject, StoredObject];
    const name = uniqueName('pre-result');
    const created = await compose(name, { sourceObjects: sources(a) }, { ifGenerationMatch: '0' });
    expect(created.status).toBe(200);
    const generation = String(created.json.generation);
    expect((await compose(name, { sourceObjects: sources(b) }, { ifGenerationMatch: '0' })).status).toBe(412);
    expect((await compose(name, { sourceObjects: sources(b) }, { ifGenerationMatch: '12345' })).status).toBe(412);
    expect((await compose(name, { sourceObjects: sources(b) }, { ifMetagenerationMatch: '2' })).status).toBe(412);
    expect(gcs.getObject(BUCKET, name)!.data.equals(a.data)).toBe(true);
    const replaced = await compose(name, { sourceObjects: sources(b) }, { ifGenerationMatch: generation, ifMetagenerationMatch: '1' });
    expect(replaced.status).toBe(200);
    expect(gcs.getObject(BUCKET, name)!.data.equals(b.data)).toBe(true);
  });

  it("gives the result the destination's metadata and the KMS key of the query", async () => {
    const [a, b] = putParts(uniqueName('meta'), 2) as [StoredObject, StoredObject];
    const name = uniqueName('meta-result');
    const { json } = await compose(
      name,
      { sourceObjects: sources(a, b), destination: { contentType: 'text/x-log', cacheControl: 'no-store', metadata: { run: '42' } } },
      { kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' },
    );
    expect(json).toMatchObject({
      contentType: 'text/x-log',
      cacheControl: 'no-store',
      metadata: { run: '42' },
      kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k',
    });
  });

  it('@google-cloud/storage composes (bucket.combine) and reads the composite back, CRC32C-validated', async () => {
    const prefix = uniqueName('sdk');
    const parts = putParts(prefix, 3, 50_000);
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test' });
    const bucket = storage.bucket(BUCKET);
    const [combined] = await bucket.combine(
      parts.map((part) => bucket.file(part.name)),
      bucket.file(`${prefix}/whole`),
    );
    const [downloaded] = await combined.download({ validation: 'crc32c' });
    expect(downloaded.equals(Buffer.concat(parts.map((part) => part.data)))).toBe(true);
  });
});

describe('delete', () => {
  it('answers 204, then 404; a generation that is not live is 404 and leaves the object', async () => {
    const [a] = putParts(uniqueName('delete'), 1) as [StoredObject];
    expect((await fetch(objectUrl(a.name, '', { generation: '1' }), { method: 'DELETE' })).status).toBe(404);
    expect(gcs.getObject(BUCKET, a.name)).toBeDefined();
    const deleted = await fetch(objectUrl(a.name, '', { generation: a.resource.generation }), { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(gcs.getObject(BUCKET, a.name)).toBeUndefined();
    expect((await fetch(objectUrl(a.name), { method: 'DELETE' })).status).toBe(404);
  });
});

describe('listing', () => {
  async function list(query: Record<string, string>): Promise<{ items?: { name: string; timeCreated: string }[]; nextPageToken?: string }> {
    const url = new URL(`${gcs.url}/storage/v1/b/${BUCKET}/o`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    return (await response.json()) as { items?: { name: string; timeCreated: string }[]; nextPageToken?: string };
  }

  it('pages by maxResults with nextPageToken, in name order, only under the prefix; an empty listing has no items', async () => {
    const prefix = uniqueName('list');
    const parts = putParts(prefix, 25, 1);
    gcs.putObject(BUCKET, `${prefix}-sibling`, Buffer.from('x'));
    const names: string[] = [];
    const sizes: number[] = [];
    let pageToken: string | undefined;
    do {
      const page = await list({ prefix: `${prefix}/`, maxResults: '10', ...(pageToken === undefined ? {} : { pageToken }) });
      sizes.push(page.items?.length ?? 0);
      for (const item of page.items ?? []) {
        expect(Number.isNaN(Date.parse(item.timeCreated))).toBe(false);
        names.push(item.name);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
    expect(sizes).toEqual([10, 10, 5]);
    expect(names).toEqual(parts.map((part) => part.name).sort());
    const empty = await list({ prefix: 'nothing-here/' });
    expect(empty.items).toBeUndefined();
    expect(empty.nextPageToken).toBeUndefined();
  });
});

describe('fault rules on compose, delete and list', () => {
  it('compose: status before creates nothing; status after and drop-response create the object and lose the answer', async () => {
    const [a, b] = putParts(uniqueName('fault-compose'), 2) as [StoredObject, StoredObject];
    const before = uniqueName('compose-before');
    gcs.inject({ match: { kind: 'compose', object: before }, action: { type: 'status', status: 503 } });
    expect((await compose(before, { sourceObjects: sources(a, b) })).status).toBe(503);
    expect(gcs.getObject(BUCKET, before)).toBeUndefined();
    const after = uniqueName('compose-after');
    gcs.inject({ match: { kind: 'compose', object: after }, action: { type: 'status', status: 500, when: 'after' } });
    expect((await compose(after, { sourceObjects: sources(a, b) })).status).toBe(500);
    expect(gcs.getObject(BUCKET, after)?.data.equals(Buffer.concat([a.data, b.data]))).toBe(true);
    const dropped = uniqueName('compose-dropped');
    gcs.inject({ match: { kind: 'compose', object: dropped }, action: { type: 'drop-response' } });
    await expect(compose(dropped, { sourceObjects: sources(a) })).rejects.toThrow();
    expect(gcs.getObject(BUCKET, dropped)?.data.equals(a.data)).toBe(true);
    const second = uniqueName('compose-nth');
    gcs.inject({ match: { kind: 'compose', object: second, nth: 1 }, action: { type: 'status', status: 429 } });
    expect((await compose(second, { sourceObjects: sources(a) })).status).toBe(200);
    expect((await compose(second, { sourceObjects: sources(b) })).status).toBe(429);
    expect(gcs.getObject(BUCKET, second)?.data.equals(a.data)).toBe(true);
  });

  it('delete: status after deletes and answers the status; reset deletes nothing', async () => {
    const [a, b] = putParts(uniqueName('fault-delete'), 2) as [StoredObject, StoredObject];
    gcs.inject({ match: { kind: 'delete', object: a.name }, action: { type: 'status', status: 503, when: 'after' } });
    expect((await fetch(objectUrl(a.name), { method: 'DELETE' })).status).toBe(503);
    expect(gcs.getObject(BUCKET, a.name)).toBeUndefined();
    gcs.inject({ match: { kind: 'delete', object: b.name }, action: { type: 'reset' } });
    await expect(fetch(objectUrl(b.name), { method: 'DELETE' })).rejects.toThrow();
    expect(gcs.getObject(BUCKET, b.name)).toBeDefined();
    // Rules without a kind (written for uploads) never fire on deletes.
    gcs.inject({ match: { object: b.name }, action: { type: 'status', status: 503 } });
    expect((await fetch(objectUrl(b.name), { method: 'DELETE' })).status).toBe(204);
    gcs.clearFaults();
  });

  it('list: status and reset by bucket and nth', async () => {
    gcs.inject({ match: { kind: 'list', bucket: BUCKET }, action: { type: 'status', status: 502 } });
    expect((await fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o?prefix=x`)).status).toBe(502);
    expect((await fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o?prefix=x`)).status).toBe(200);
    gcs.inject({ match: { kind: 'list' }, action: { type: 'reset' } });
    await expect(fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o`)).rejects.toThrow();
  });

  it('refuses rules that cannot apply to these requests', () => {
    expect(() => gcs.inject({ match: { kind: 'compose', session: 0 }, action: { type: 'reset' } })).toThrow(RangeError);
    expect(() => gcs.inject({ match: { kind: 'delete' }, action: { type: 'partial', bytes: 1 } })).toThrow(RangeError);
    expect(() => gcs.inject({ match: { kind: 'list' }, action: { type: 'status', status: 503, when: 'after' } })).toThrow(RangeError);
    expect(() => gcs.inject({ match: { kind: 'list', object: 'x' }, action: { type: 'reset' } })).toThrow(RangeError);
    expect(() => gcs.inject({ match: { kind: 'compose', offset: 0 }, action: { type: 'reset' } })).toThrow(RangeError);
  });
});

describe('chaos on compose, delete and list', () => {
  it('faults them only when asked to (requests), with the faults that apply', async () => {
    const server = await startLocalGcs({ chaos: { probability: 1, kinds: ['status-before', 'partial', 'expire'] } });
    try {
      server.putObject(BUCKET, 'a', Buffer.from('a'));
      // Upload chaos alone leaves deletes alone.
      expect((await fetch(`${server.url}/storage/v1/b/${BUCKET}/o/a`, { method: 'DELETE' })).status).toBe(204);
      server.putObject(BUCKET, 'a', Buffer.from('a'));
      server.setChaos({
        probability: 1,
        kinds: ['status-before', 'partial', 'expire'],
        requests: ['delete', 'compose', 'list'],
        statuses: [503],
      });
      expect((await fetch(`${server.url}/storage/v1/b/${BUCKET}/o/a`, { method: 'DELETE' })).status).toBe(503);
      expect((await fetch(`${server.url}/storage/v1/b/${BUCKET}/o`)).status).toBe(503);
      const composed = await fetch(`${server.url}/storage/v1/b/${BUCKET}/o/b/compose`, {
        method: 'POST',
        body: JSON.stringify({ sourceObjects: [{ name: 'a' }] }),
      });
      expect(composed.status).toBe(503);
      expect(server.getObject(BUCKET, 'a')).toBeDefined();
      expect(server.getObject(BUCKET, 'b')).toBeUndefined();
      expect(server.faultsInjected).toBe(3);
      expect(() => server.setChaos({ probability: 1, requests: ['cancel' as 'open'] })).toThrow(RangeError);
    } finally {
      await server.close();
    }
  });
});

describe('per-connection bandwidth limit', () => {
  it('meters every body byte of a connection and pauses it, and the upload lands intact', async () => {
    const server = await startLocalGcs({ connectionBytesPerSecond: 4 * MiB });
    try {
      const data = randomBytes(8 * K256 + 17);
      const stream = createGcsWriteStream({ bucket: BUCKET, name: 'limited', apiEndpoint: server.url, chunkSize: 4 * K256 });
      await new Promise<void>((resolve, reject) => {
        stream.once('finish', resolve);
        stream.once('error', reject);
        stream.end(data);
      });
      expect(server.getObject(BUCKET, 'limited')?.data.equals(data)).toBe(true);
      const stats = server.throttleStats!;
      expect(stats.bytesPerSecond).toBe(4 * MiB);
      // Every body byte went through the limit (the open's JSON too).
      expect(stats.bytesMetered).toBeGreaterThanOrEqual(data.length);
      // 2 MiB through a bucket of 256 KiB at 4 MiB/s: loopback delivers faster, so the connection was held back.
      expect(stats.pauses).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
    expect(gcs.throttleStats).toBeUndefined();
    await expect(startLocalGcs({ connectionBytesPerSecond: 0 })).rejects.toThrow(RangeError);
  });
});
