import { Storage } from '@google-cloud/storage';
import { crc32c } from '@node-rs/crc32';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { until } from './child.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  crc32cToBase64,
  createRng,
  faultMatches,
  startLocalGcs,
  validateFaultRule,
  type ChaosOptions,
  type FaultRule,
  type LocalGcs,
} from '../src/testing/index.js';

const K256 = 256 * 1024;
const BUCKET = 'server-test';

let gcs: LocalGcs;
beforeAll(async () => {
  gcs = await startLocalGcs();
});
afterAll(async () => {
  await gcs.close();
});
afterEach(() => {
  gcs.clearFaults();
});

let counter = 0;
function uniqueName(label: string): string {
  counter += 1;
  return `${label}/${counter}`;
}

function bytes(size: number, seed = 7): Buffer {
  const rng = createRng(seed);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

function googHash(data: Buffer): string {
  return `crc32c=${crc32cToBase64(crc32c(data))},md5=${md5Base64(data)}`;
}

interface OpenOptions {
  query?: Record<string, string>;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  server?: LocalGcs;
}

function openRequest(name: string | undefined, options: OpenOptions = {}): Promise<Response> {
  const server = options.server ?? gcs;
  const query = new URLSearchParams({ uploadType: 'resumable', ...(name === undefined ? {} : { name }), ...options.query });
  return fetch(`${server.url}/upload/storage/v1/b/${BUCKET}/o?${query.toString()}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=UTF-8', ...options.headers },
    body: JSON.stringify(options.body ?? {}),
  });
}

async function open(name: string, options: OpenOptions = {}): Promise<string> {
  const response = await openRequest(name, options);
  expect(response.status).toBe(200);
  const location = response.headers.get('location');
  expect(location).toMatch(/upload_id=/);
  return location ?? '';
}

function put(
  session: string,
  range: string | undefined,
  body?: Buffer,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(session, {
    method: 'PUT',
    redirect: 'manual',
    headers: { ...(range === undefined ? {} : { 'content-range': range }), ...headers },
    body: body ?? Buffer.alloc(0),
    signal,
  });
}

const query = (session: string): Promise<Response> => put(session, 'bytes */*');

async function errorMessage(response: Response): Promise<string> {
  const json = (await response.json()) as { error: { code: number; message: string } };
  expect(json.error.code).toBe(response.status);
  return json.error.message;
}

/** The request log entries of one session. */
function recordsOf(server: LocalGcs, name: string): LocalGcs['requests'] {
  return server.requests.filter((record) => record.object === name);
}

describe('resumable protocol', () => {
  it('open, chunks and final produce the object with its size, crc32c and md5', async () => {
    const name = uniqueName('basic');
    const data = bytes(3 * K256 + 1234);
    const session = await open(name, {
      headers: { 'x-upload-content-type': 'text/plain' },
      body: { metadata: { origin: 'test' }, cacheControl: 'no-cache', contentDisposition: 'inline' },
      query: { predefinedAcl: 'private', userProject: 'p' },
    });
    expect(session.startsWith(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?`)).toBe(true);

    const first = await put(session, `bytes 0-${2 * K256 - 1}/*`, data.subarray(0, 2 * K256));
    expect(first.status).toBe(308);
    expect(first.headers.get('range')).toBe(`bytes=0-${2 * K256 - 1}`);
    expect(first.headers.get('location')).toBeNull();
    const second = await put(session, `bytes ${2 * K256}-${3 * K256 - 1}/*`, data.subarray(2 * K256, 3 * K256));
    expect(second.headers.get('range')).toBe(`bytes=0-${3 * K256 - 1}`);
    const final = await put(session, `bytes ${3 * K256}-${data.length - 1}/${data.length}`, data.subarray(3 * K256), {
      'x-goog-hash': googHash(data),
    });
    expect(final.status).toBe(200);
    const resource = (await final.json()) as Record<string, unknown>;
    expect(resource).toMatchObject({
      kind: 'storage#object',
      name,
      bucket: BUCKET,
      size: String(data.length),
      crc32c: crc32cToBase64(crc32c(data)),
      md5Hash: md5Base64(data),
      contentType: 'text/plain',
      metadata: { origin: 'test' },
      cacheControl: 'no-cache',
      contentDisposition: 'inline',
      metageneration: '1',
      storageClass: 'STANDARD',
    });
    expect(resource.generation).toMatch(/^\d+$/);
    const stored = gcs.getObject(BUCKET, name);
    expect(stored?.data.equals(data)).toBe(true);
    expect(stored?.resource).toEqual(resource);
    expect(gcs.listObjects(BUCKET).map((object) => object.name)).toContain(name);
    expect(gcs.requests.every((record) => !record.path.includes('upload_id'))).toBe(true);
    expect(recordsOf(gcs, name).map((record) => record.kind)).toEqual(['open', 'chunk', 'chunk', 'final']);
  });

  it('status query: 308 without Range when nothing is committed, with Range after a chunk, 200 once finished', async () => {
    const name = uniqueName('query');
    const data = bytes(K256 + 10);
    const session = await open(name);
    const fresh = await query(session);
    expect(fresh.status).toBe(308);
    expect(fresh.headers.get('range')).toBeNull();
    await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256));
    const partial = await query(session);
    expect(partial.status).toBe(308);
    expect(partial.headers.get('range')).toBe(`bytes=0-${K256 - 1}`);
    const final = await put(session, `bytes ${K256}-${data.length - 1}/${data.length}`, data.subarray(K256));
    const resource = (await final.json()) as { generation: string };
    const finished = await query(session);
    expect(finished.status).toBe(200);
    expect(((await finished.json()) as { generation: string }).generation).toBe(resource.generation);
    // Any PUT to a finished session answers with the same resource (the lost final response case).
    const again = await put(session, `bytes ${K256}-${data.length - 1}/${data.length}`, data.subarray(K256));
    expect(again.status).toBe(200);
    expect(((await again.json()) as { generation: string }).generation).toBe(resource.generation);
  });

  it('rejects a misaligned non-final chunk with 400 and persists nothing', async () => {
    const session = await open(uniqueName('misaligned'));
    const response = await put(session, 'bytes 0-99999/*', bytes(100_000));
    expect(response.status).toBe(400);
    expect(await errorMessage(response)).toMatch(/multiple of 262144/);
    expect((await query(session)).headers.get('range')).toBeNull();
  });

  it('rejects a body whose length differs from the Content-Range, a gap, and a malformed header', async () => {
    const session = await open(uniqueName('invalid'));
    const short = await put(session, `bytes 0-${K256 - 1}/*`, bytes(K256 - 1));
    expect(short.status).toBe(400);
    expect(await errorMessage(short)).toMatch(/covers 262144 bytes but the body has 262143/);
    const gap = await put(session, `bytes ${K256}-${2 * K256 - 1}/*`, bytes(K256));
    expect(gap.status).toBe(400);
    expect(await errorMessage(gap)).toMatch(/missing/);
    const malformed = await put(session, 'bytes=0-1/2', bytes(2));
    expect(malformed.status).toBe(400);
    expect((await query(session)).headers.get('range')).toBeNull();
  });

  it('ignores the already-persisted head of a resent chunk', async () => {
    const name = uniqueName('overlap');
    const data = bytes(2 * K256 + 3);
    const session = await open(name);
    await put(session, `bytes 0-${2 * K256 - 1}/*`, data.subarray(0, 2 * K256));
    const resent = await put(session, `bytes ${K256}-${2 * K256 - 1}/*`, data.subarray(K256, 2 * K256));
    expect(resent.headers.get('range')).toBe(`bytes=0-${2 * K256 - 1}`);
    const final = await put(session, `bytes ${K256}-${data.length - 1}/${data.length}`, data.subarray(K256));
    expect(final.status).toBe(200);
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
  });

  it('finalizes with bytes */TOTAL (308 while bytes are missing) and creates empty objects with bytes */0', async () => {
    const name = uniqueName('total');
    const data = bytes(2 * K256);
    const session = await open(name);
    await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256));
    const early = await put(session, `bytes */${data.length}`);
    expect(early.status).toBe(308);
    expect(early.headers.get('range')).toBe(`bytes=0-${K256 - 1}`);
    const last = await put(session, `bytes ${K256}-${2 * K256 - 1}/*`, data.subarray(K256));
    expect(last.status).toBe(308);
    const final = await put(session, `bytes */${data.length}`);
    expect(final.status).toBe(200);
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);

    const emptyName = uniqueName('empty');
    const empty = await put(await open(emptyName), 'bytes */0');
    expect(empty.status).toBe(200);
    expect(await empty.json()).toMatchObject({ size: '0', crc32c: 'AAAAAA==', md5Hash: '1B2M2Y8AsgTpgAmY7PhCfg==' });
    expect(gcs.getObject(BUCKET, emptyName)?.data.length).toBe(0);
  });

  it('accepts a single open-ended request (bytes 0-*/*), as @google-cloud/storage sends it', async () => {
    const name = uniqueName('open-ended');
    const data = bytes(K256 + 17);
    const response = await put(await open(name), 'bytes 0-*/*', data);
    expect(response.status).toBe(200);
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
  });

  it('cancel answers 499, later requests 410', async () => {
    const name = uniqueName('cancel');
    const session = await open(name);
    await put(session, `bytes 0-${K256 - 1}/*`, bytes(K256));
    const before = gcs.cancelledSessions;
    const cancelled = await fetch(session, { method: 'DELETE' });
    expect(cancelled.status).toBe(499);
    expect(gcs.cancelledSessions).toBe(before + 1);
    expect((await query(session)).status).toBe(410);
    expect((await put(session, 'bytes */262144')).status).toBe(410);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
    expect(gcs.listSessions().find((session) => session.name === name)?.state).toBe('cancelled');
  });

  it('answers 404 for an unknown session and 400 for an open without a name; takes the name from the body', async () => {
    const unknown = await query(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&upload_id=nope`);
    expect(unknown.status).toBe(404);
    expect(await errorMessage(unknown)).toMatch(/No such upload session/);
    const nameless = await openRequest(undefined);
    expect(nameless.status).toBe(400);
    expect(await errorMessage(nameless)).toMatch(/name/);
    const name = uniqueName('body-name');
    const response = await openRequest(undefined, { body: { name, contentType: 'image/png' } });
    expect(response.status).toBe(200);
    const final = await put(response.headers.get('location') ?? '', 'bytes 0-2/3', Buffer.from('abc'));
    expect(await final.json()).toMatchObject({ name, contentType: 'image/png' });
  });

  it('checks preconditions at open (412) and again at finalize (412, session dead)', async () => {
    const name = uniqueName('preconditions');
    const existing = gcs.putObject(BUCKET, name, Buffer.from('old'));
    const mustNotExist = await openRequest(name, { query: { ifGenerationMatch: '0' } });
    expect(mustNotExist.status).toBe(412);
    expect(await errorMessage(mustNotExist)).toMatch(/ifGenerationMatch/);
    expect((await openRequest(name, { query: { ifGenerationMatch: '123' } })).status).toBe(412);
    expect((await openRequest(name, { query: { ifMetagenerationMatch: '2' } })).status).toBe(412);
    expect((await openRequest(name, { query: { ifGenerationNotMatch: existing.resource.generation } })).status).toBe(412);

    const session = await open(name, { query: { ifGenerationMatch: existing.resource.generation } });
    gcs.putObject(BUCKET, name, Buffer.from('newer')); // someone else wins the race
    const final = await put(session, 'bytes 0-2/3', Buffer.from('abc'));
    expect(final.status).toBe(412);
    expect((await query(session)).status).toBe(412);
    expect(gcs.getObject(BUCKET, name)?.data.toString()).toBe('newer');

    const fresh = uniqueName('preconditions-fresh');
    const ok = await put(await open(fresh, { query: { ifGenerationMatch: '0' } }), 'bytes 0-2/3', Buffer.from('abc'));
    expect(ok.status).toBe(200);
  });

  it('verifies X-Goog-Hash on the final request', async () => {
    const name = uniqueName('hash');
    const data = bytes(1000);
    const good = await put(await open(name), `bytes 0-999/1000`, data, { 'x-goog-hash': `crc32c=${crc32cToBase64(crc32c(data))}` });
    expect(good.status).toBe(200);
    const other = uniqueName('hash-bad');
    const session = await open(other);
    const bad = await put(session, `bytes 0-999/1000`, data, { 'x-goog-hash': googHash(bytes(1000, 99)) });
    expect(bad.status).toBe(400);
    expect(await errorMessage(bad)).toMatch(/do not match/);
    expect(gcs.getObject(BUCKET, other)).toBeUndefined();
    expect((await query(session)).status).toBe(400);
  });
});

describe('scripted faults', () => {
  it('reset: reads part of the body, resets the connection, persists nothing', async () => {
    const name = uniqueName('reset');
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', object: name }, action: { type: 'reset', afterBytes: 1000 } });
    await expect(put(session, `bytes 0-${K256 - 1}/*`, bytes(K256))).rejects.toThrow();
    expect((await query(session)).headers.get('range')).toBeNull();
    const records = recordsOf(gcs, name);
    expect(records.find((record) => record.kind === 'chunk')).toMatchObject({ status: 'reset', fault: 'reset after 1000' });
  });

  it('status before: answers without persisting, with Retry-After', async () => {
    const name = uniqueName('status-before');
    const session = await open(name);
    const injectedBefore = gcs.faultsInjected;
    gcs.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'status', status: 503, retryAfterSeconds: 2 } });
    const response = await put(session, `bytes 0-${K256 - 1}/*`, bytes(K256));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(await errorMessage(response)).toMatch(/503/);
    expect(gcs.faultsInjected).toBe(injectedBefore + 1);
    expect((await query(session)).headers.get('range')).toBeNull();
  });

  it('status after: persists (and finalizes) first', async () => {
    const name = uniqueName('status-after');
    const data = bytes(K256 + 5);
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', object: name, times: 2 }, action: { type: 'status', status: 500, when: 'after' } });
    expect((await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256))).status).toBe(500);
    expect((await query(session)).headers.get('range')).toBe(`bytes=0-${K256 - 1}`);
    expect((await put(session, `bytes ${K256}-${data.length - 1}/${data.length}`, data.subarray(K256))).status).toBe(500);
    expect((await query(session)).status).toBe(200);
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
  });

  it('partial: persists only part of the chunk (even unaligned), 308 with that Range, never finalizes', async () => {
    const name = uniqueName('partial');
    const data = bytes(2 * K256 + 9);
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', nth: 0, object: name }, action: { type: 'partial', bytes: 100_000 } });
    const first = await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256));
    expect(first.status).toBe(308);
    expect(first.headers.get('range')).toBe('bytes=0-99999');
    const resend = await put(session, `bytes 100000-${100_000 + K256 - 1}/*`, data.subarray(100_000, 100_000 + K256));
    expect(resend.headers.get('range')).toBe(`bytes=0-${100_000 + K256 - 1}`);
    gcs.inject({ match: { kind: 'final', object: name }, action: { type: 'partial', bytes: 50 } });
    const tail = data.subarray(100_000 + K256);
    const notFinal = await put(session, `bytes ${100_000 + K256}-${data.length - 1}/${data.length}`, tail);
    expect(notFinal.status).toBe(308);
    expect(notFinal.headers.get('range')).toBe(`bytes=0-${100_000 + K256 + 49}`);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
    const final = await put(session, `bytes ${100_000 + K256}-${data.length - 1}/${data.length}`, tail);
    expect(final.status).toBe(200);
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
  });

  it('drop-response: finalizes, then closes without answering; the status query returns the object', async () => {
    const name = uniqueName('drop');
    const data = bytes(777);
    const session = await open(name);
    gcs.inject({ match: { kind: 'final', object: name }, action: { type: 'drop-response' } });
    await expect(put(session, 'bytes 0-776/777', data)).rejects.toThrow();
    expect(recordsOf(gcs, name).at(-1)?.status).toBe('dropped');
    const status = await query(session);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ size: '777' });
  });

  it('stall with ms: delays, then answers normally', async () => {
    const name = uniqueName('stall-ms');
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', object: name }, action: { type: 'stall', ms: 300 } });
    const started = Date.now();
    const response = await put(session, `bytes 0-${K256 - 1}/*`, bytes(K256));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(response.status).toBe(308);
    expect(response.headers.get('range')).toBe(`bytes=0-${K256 - 1}`);
  });

  it('stall without ms: never answers; the client gives up; nothing persisted', async () => {
    const name = uniqueName('stall');
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', object: name }, action: { type: 'stall' } });
    await expect(put(session, `bytes 0-${K256 - 1}/*`, bytes(K256), {}, AbortSignal.timeout(300))).rejects.toThrow();
    expect(recordsOf(gcs, name).find((record) => record.kind === 'chunk')?.status).toBe('stalled');
    expect((await query(session)).headers.get('range')).toBeNull();
  });

  it('expire: this and every later request get the status (default 404, or 410)', async () => {
    const name = uniqueName('expire');
    const session = await open(name);
    gcs.inject({ match: { kind: 'query', object: name }, action: { type: 'expire' } });
    expect((await query(session)).status).toBe(404);
    expect((await put(session, 'bytes 0-2/3', Buffer.from('abc'))).status).toBe(404);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();

    const gone = await open(uniqueName('expire-410'));
    gcs.inject({ match: { kind: 'chunk', offset: 5 }, action: { type: 'expire', status: 410 } });
    expect((await put(gone, 'bytes 0-9/10', bytes(10))).status).toBe(410);
    expect((await query(gone)).status).toBe(410);
  });

  it('corrupt: flips a byte in transit; X-Goog-Hash then refuses to finalize (400, session failed)', async () => {
    const name = uniqueName('corrupt');
    const data = bytes(K256 + 100);
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'corrupt', at: 5 } });
    expect((await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256))).status).toBe(308);
    const final = await put(session, `bytes ${K256}-${data.length - 1}/${data.length}`, data.subarray(K256), {
      'x-goog-hash': googHash(data),
    });
    expect(final.status).toBe(400);
    expect(await errorMessage(final)).toMatch(/crc32c/);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
    expect((await query(session)).status).toBe(400);
    expect(gcs.listSessions().find((session) => session.name === name)?.state).toBe('failed');

    // Without a checksum the corruption lands, which is why clients send one.
    const unchecked = uniqueName('corrupt-unchecked');
    gcs.inject({ match: { kind: 'final', object: unchecked }, action: { type: 'corrupt' } });
    expect((await put(await open(unchecked), 'bytes 0-2/3', Buffer.from('abc'))).status).toBe(200);
    expect(gcs.getObject(BUCKET, unchecked)?.data.equals(Buffer.from([0x61 ^ 0xff, 0x62, 0x63]))).toBe(true);
  });

  it('latency: delays one response', async () => {
    const session = await open(uniqueName('latency'));
    gcs.inject({ match: { kind: 'query' }, action: { type: 'latency', ms: 200 } });
    const started = Date.now();
    expect((await query(session)).status).toBe(308);
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
  });

  it('matches by nth, session, offset and times; first rule wins', async () => {
    const name = uniqueName('matching');
    const data = bytes(4 * K256);
    const session = await open(name);
    const index = gcs.listSessions().find((info) => info.name === name)?.index ?? -1;
    gcs.inject({ match: { kind: 'chunk', session: index + 1 }, action: { type: 'status', status: 502 } }); // another session
    gcs.inject({ match: { kind: 'chunk', session: index, nth: 1, times: Infinity }, action: { type: 'status', status: 503 } });
    gcs.inject({ match: { kind: 'chunk', session: index, offset: 3 * K256 + 1, times: 2 }, action: { type: 'status', status: 429 } });
    const statuses: number[] = [];
    for (let chunk = 0; chunk < 4; chunk++) {
      const start = chunk * K256;
      statuses.push((await put(session, `bytes ${start}-${start + K256 - 1}/*`, data.subarray(start, start + K256))).status);
    }
    // The 2nd request (nth 1) failed, so chunk 2 left a gap (400); faults fire before validation (429).
    expect(statuses).toEqual([308, 503, 400, 429]);
    expect((await put(session, `bytes ${K256}-${2 * K256 - 1}/*`, data.subarray(K256, 2 * K256))).status).toBe(308);
    expect((await put(session, `bytes ${2 * K256}-${3 * K256 - 1}/*`, data.subarray(2 * K256, 3 * K256))).status).toBe(308);
    expect((await put(session, `bytes ${3 * K256}-${4 * K256 - 1}/*`, data.subarray(3 * K256))).status).toBe(429);
    expect((await put(session, `bytes ${3 * K256}-${4 * K256 - 1}/*`, data.subarray(3 * K256))).status).toBe(308);
    expect(gcs.pendingFaults).toBe(2); // the other-session rule and the Infinity rule
  });

  it('rejects malformed rules', () => {
    const bad: unknown[] = [
      { match: { kind: 'upload' }, action: { type: 'reset' } },
      { match: { nth: -1 }, action: { type: 'reset' } },
      { match: { times: 0 }, action: { type: 'reset' } },
      { match: {}, action: { type: 'status', status: 'x' } },
      { match: {}, action: { type: 'partial' } },
      { match: {}, action: { type: 'hostile', variant: 'nice' } },
      { match: {}, action: { type: 'explode' } },
    ];
    for (const rule of bad) expect(() => validateFaultRule(rule as FaultRule)).toThrow();
    expect(faultMatches({ offset: 10 }, { kinds: ['final'], nth: {}, total: 10 })).toBe(true);
    expect(faultMatches({ offset: 10 }, { kinds: ['query'], nth: {} })).toBe(true);
    expect(faultMatches({ kind: 'chunk' }, { kinds: ['final', 'chunk'], nth: { chunk: 0 } })).toBe(true);
  });
});

describe('hostile server', () => {
  it('bad-range, range-beyond and range-backwards answer 308 with a wrong Range and do not finalize', async () => {
    const name = uniqueName('hostile-ranges');
    const data = bytes(2 * K256 + 1);
    const session = await open(name);
    gcs.inject({ match: { kind: 'chunk', object: name, nth: 0 }, action: { type: 'hostile', variant: 'bad-range' } });
    gcs.inject({ match: { kind: 'chunk', object: name, nth: 1 }, action: { type: 'hostile', variant: 'range-beyond' } });
    gcs.inject({ match: { kind: 'chunk', object: name, nth: 2 }, action: { type: 'hostile', variant: 'range-backwards' } });
    const badRange = await put(session, `bytes 0-${K256 - 1}/*`, data.subarray(0, K256));
    expect([badRange.status, badRange.headers.get('range')]).toEqual([308, 'bytes=abc']);
    const beyond = await put(session, `bytes ${K256}-${2 * K256 - 1}/*`, data.subarray(K256, 2 * K256));
    expect([beyond.status, beyond.headers.get('range')]).toEqual([308, `bytes=0-${3 * K256 - 1}`]);
    const backwards = await put(session, `bytes ${2 * K256}-${data.length - 1}/${data.length}`, data.subarray(2 * K256));
    expect([backwards.status, backwards.headers.get('range')]).toEqual([308, `bytes=0-${2 * K256 - 2}`]);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
  });

  it('bad-object answers 200 with a body that is not an object resource', async () => {
    const name = uniqueName('hostile-object');
    const session = await open(name);
    gcs.inject({ match: { kind: 'final', object: name }, action: { type: 'hostile', variant: 'bad-object' } });
    const response = await put(session, 'bytes 0-2/3', Buffer.from('abc'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: 1 });
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
  });

  it('no-location and foreign-location break the open response', async () => {
    const name = uniqueName('hostile-open');
    gcs.inject({ match: { kind: 'open', object: name }, action: { type: 'hostile', variant: 'no-location' } });
    gcs.inject({ match: { kind: 'open', object: name }, action: { type: 'hostile', variant: 'foreign-location' } });
    const none = await openRequest(name);
    expect([none.status, none.headers.get('location')]).toEqual([200, null]);
    const foreign = await openRequest(name);
    expect(foreign.status).toBe(200);
    expect(foreign.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.2:1\/upload\/storage\/v1\/b\//);
  });

  it('trickle sends the response one byte per interval', async () => {
    const slow = await startLocalGcs({ trickleIntervalMs: 2 });
    try {
      const session = await open(uniqueName('trickle'), { server: slow });
      slow.inject({ match: { kind: 'query' }, action: { type: 'hostile', variant: 'trickle' } });
      const started = Date.now();
      const response = await query(session);
      expect(response.status).toBe(308);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 40);
    } finally {
      await slow.close();
    }
    // With the default interval the status line does not arrive in time.
    const session = await open(uniqueName('trickle-default'));
    gcs.inject({ match: { kind: 'query' }, action: { type: 'hostile', variant: 'trickle' } });
    await expect(put(session, 'bytes */*', undefined, {}, AbortSignal.timeout(300))).rejects.toThrow();
  });
});

describe('reading back through @google-cloud/storage', () => {
  it('download(), getMetadata(), exists(), ranges, getFiles() and delete()', async () => {
    const name = uniqueName('sdk read/back');
    const data = bytes(K256 + 999);
    await put(
      await open(name, { headers: { 'x-upload-content-type': 'application/x-test' } }),
      `bytes 0-${data.length - 1}/${data.length}`,
      data,
    );
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test' });
    const file = storage.bucket(BUCKET).file(name);
    const [downloaded] = await file.download();
    expect(downloaded.equals(data)).toBe(true);
    const [md5Checked] = await file.download({ validation: 'md5' });
    expect(md5Checked.equals(data)).toBe(true);
    const [range] = await file.download({ start: 10, end: 19 });
    expect(range.equals(data.subarray(10, 20))).toBe(true);
    const [metadata] = await file.getMetadata();
    expect(metadata).toMatchObject({ size: String(data.length), contentType: 'application/x-test', crc32c: crc32cToBase64(crc32c(data)) });
    expect((await file.exists())[0]).toBe(true);
    const [files] = await storage.bucket(BUCKET).getFiles({ prefix: 'sdk read/' });
    expect(files.map((listed) => listed.name)).toEqual([name]);
    await file.delete();
    expect((await file.exists())[0]).toBe(false);
    expect(gcs.getObject(BUCKET, name)).toBeUndefined();
    await expect(file.getMetadata()).rejects.toMatchObject({ code: 404 });
  });

  it('file.save() (a resumable upload by @google-cloud/storage itself) lands intact', async () => {
    const name = uniqueName('sdk-save');
    const data = bytes(3 * K256 + 5);
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test' });
    await storage.bucket(BUCKET).file(name).save(data, { resumable: true });
    expect(gcs.getObject(BUCKET, name)?.data.equals(data)).toBe(true);
  });
});

/** A minimal, deterministic client that retries everything, for chaos runs. */
async function chaoticUpload(server: LocalGcs, name: string, data: Buffer): Promise<void> {
  let session: string | null = null;
  for (let attempt = 0; attempt < 50 && session === null; attempt++) {
    const response = await openRequest(name, { server }).catch(() => undefined);
    if (response?.status === 200) session = response.headers.get('location');
  }
  if (session === null) throw new Error('could not open a session');
  let committed = 0;
  for (let attempt = 0; attempt < 500; attempt++) {
    const end = Math.min(committed + K256, data.length);
    const total = end === data.length ? String(data.length) : '*';
    const sent = await put(session, `bytes ${committed}-${end - 1}/${total}`, data.subarray(committed, end)).catch(() => undefined);
    if (sent?.status === 200) return;
    await sent?.arrayBuffer();
    const status = await query(session).catch(() => undefined);
    if (status?.status === 200) return;
    const range = status?.status === 308 ? status.headers.get('range') : undefined;
    if (status?.status === 308) committed = range == null ? 0 : Number(range.split('-')[1]) + 1;
    await status?.arrayBuffer();
  }
  throw new Error('chaotic upload did not finish');
}

describe('chaos', () => {
  it('createRng is deterministic and uniform enough', () => {
    const a = createRng(42);
    const b = createRng(42);
    const first = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(first);
    expect(first.every((value) => value >= 0 && value < 1)).toBe(true);
    const mean = first.reduce((sum, value) => sum + value, 0) / first.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    expect(createRng(43)()).not.toBe(createRng(42)());
  });

  it('the same seed and requests give the same faults, and uploads still complete', async () => {
    const data = bytes(6 * K256 + 321);
    const chaos: ChaosOptions = { seed: 1234, probability: 0.4, stallMinMs: 1, stallMaxMs: 10, unaligned: false };
    const run = async (options: ChaosOptions): Promise<{ faults: Array<string | undefined>; injected: number }> => {
      const server = await startLocalGcs({ chaos: options });
      try {
        await chaoticUpload(server, 'chaos', data);
        expect(server.getObject(BUCKET, 'chaos')?.data.equals(data)).toBe(true);
        return { faults: server.requests.map((record) => record.fault), injected: server.faultsInjected };
      } finally {
        await server.close();
      }
    };
    const first = await run(chaos);
    const second = await run(chaos);
    expect(first.injected).toBeGreaterThan(0);
    expect(second).toEqual(first);
    const other = await run({ ...chaos, seed: 99 });
    expect(other.faults).not.toEqual(first.faults);
  });

  it('setChaos starts and stops random faults', async () => {
    const server = await startLocalGcs({ seed: 5 });
    try {
      server.setChaos({ probability: 1, kinds: ['status-before'], statuses: [503] });
      expect((await openRequest('x', { server })).status).toBe(503);
      server.setChaos(undefined);
      expect((await openRequest('x', { server })).status).toBe(200);
      expect(server.faultsInjected).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('server lifecycle', () => {
  it('latency is added before every response', async () => {
    const server = await startLocalGcs({ latencyMs: 100 });
    try {
      const started = Date.now();
      await openRequest('x', { server });
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      server.setLatency(0);
      const again = Date.now();
      await openRequest('y', { server });
      expect(Date.now() - again).toBeLessThan(90);
    } finally {
      await server.close();
    }
  });

  it('close() does not hang on a stalled request', async () => {
    const server = await startLocalGcs();
    const session = await open('stalled', { server });
    server.inject({ match: { kind: 'query' }, action: { type: 'stall' } });
    const pending = query(session).catch((error: unknown) => error);
    await until(() => server.requests.some((r) => r.kind === 'query'), 'the query to arrive', [[server.activity, 'change']]);
    await server.close();
    expect(await pending).toBeInstanceOf(Error);
  });

  it('discardData keeps size and checksums only', async () => {
    const server = await startLocalGcs({ discardData: true });
    try {
      const data = bytes(K256 + 3);
      const response = await put(await open('discarded', { server }), `bytes 0-${data.length - 1}/${data.length}`, data);
      expect(await response.json()).toMatchObject({
        size: String(data.length),
        crc32c: crc32cToBase64(crc32c(data)),
        md5Hash: md5Base64(data),
      });
      expect(server.getObject(BUCKET, 'discarded')?.data.length).toBe(0);
      const media = await fetch(`${server.url}/download/storage/v1/b/${BUCKET}/o/discarded?alt=media`);
      expect(media.status).toBe(501);
    } finally {
      await server.close();
    }
  });
});

describe('session indexes', () => {
  // Before the fix, an open took as its index the number of sessions created so far, when it arrived: two opens in
  // progress at once both took it, and a rule matching `session` hit both sessions (or neither the one it meant).
  it('two opens in progress at once get different indexes, in the order they arrived; a refused one takes none', async () => {
    const server = await startLocalGcs();
    try {
      const openUrl = (name: string): string =>
        `${server.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=${encodeURIComponent(name)}`;
      const body = '{"contentType":"text/plain"}';
      // The first open sends its headers and half its body, and waits.
      const first = request(openUrl('index/first'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      });
      const firstAnswer = new Promise<number>((resolve, reject) => {
        first.once('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        first.once('error', reject);
      });
      first.write(body.slice(0, 10));
      await until(() => server.requests.length === 1, 'the first open', [[server.activity, 'change']]);
      // The second one arrives while the first is in progress, and completes first.
      const second = await fetch(openUrl('index/second'), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(second.status).toBe(200);
      first.end(body.slice(10));
      expect(await firstAnswer).toBe(200);
      expect(server.listSessions().map(({ index, name }) => ({ index, name }))).toEqual([
        { index: 0, name: 'index/first' },
        { index: 1, name: 'index/second' },
      ]);
      // Sequential opens keep numbering without gaps, whatever was refused between them.
      expect((await fetch(openUrl(''), { method: 'POST' })).status).toBe(400);
      expect((await fetch(openUrl('index/third'), { method: 'POST' })).status).toBe(200);
      expect(server.listSessions().map(({ index }) => index)).toEqual([0, 1, 2]);
    } finally {
      await server.close();
    }
  });
});
