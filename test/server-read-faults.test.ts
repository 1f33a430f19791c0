/**
 * Scripted faults on the object reads of the local server (`metadata` and `media` rules): what each action does to
 * a GET, how rules match, and that rules written for uploads never fire on reads.
 */
import { get, type IncomingHttpHeaders } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRng, startLocalGcs, validateFaultRule, type FaultRule, type LocalGcs } from '../src/testing/index.js';

const BUCKET = 'read-faults';
let gcs: LocalGcs;
beforeAll(async () => {
  gcs = await startLocalGcs();
});
afterAll(() => gcs.close());
afterEach(() => gcs.clearFaults());

let counter = 0;
/** A new object of `size` seeded random bytes; returns its name and bytes. */
function stored(size: number): { name: string; data: Buffer } {
  counter += 1;
  const name = `read-faults-${counter}`;
  const rng = createRng(counter);
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = Math.floor(rng() * 256);
  gcs.putObject(BUCKET, name, data);
  return { name, data };
}

const metadataUrl = (name: string): string => `${gcs.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(name)}`;
const mediaUrl = (name: string): string => `${metadataUrl(name)}?alt=media`;

/** What a GET got: its head and body bytes, and the error that ended it early, if one did. */
interface Got {
  status: number | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
  error: string | undefined;
}

/** A GET over node:http that keeps whatever arrived before the connection broke. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { status: undefined, headers: {}, body: Buffer.alloc(0), error: undefined };
    const parts: Buffer[] = [];
    const done = (error?: Error): void => {
      got.body = Buffer.concat(parts);
      got.error ??= error === undefined ? undefined : ((error as { code?: string }).code ?? error.message);
      resolve(got);
    };
    const req = get(url, { headers, agent: false }, (res) => {
      got.status = res.statusCode;
      got.headers = res.headers;
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('error', (error) => (got.error ??= (error as { code?: string }).code ?? error.message));
      res.on('close', () => done(res.complete ? undefined : new Error('incomplete')));
    });
    req.on('error', (error) => done(error));
  });
}

function recordsOf(name: string): LocalGcs['requests'] {
  return gcs.requests.filter((record) => record.object === name);
}

describe('scripted faults on object reads', () => {
  it('metadata: status answers instead of the object, with Retry-After; the next read is served', async () => {
    const { name, data } = stored(100);
    gcs.inject({ match: { kind: 'metadata', object: name }, action: { type: 'status', status: 503, retryAfterSeconds: 3 } });
    const failed = await fetch(metadataUrl(name));
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('3');
    expect(((await failed.json()) as { error: { message: string } }).error.message).toMatch(/503/);
    const served = await fetch(metadataUrl(name));
    expect(served.status).toBe(200);
    expect(((await served.json()) as { size: string }).size).toBe(String(data.length));
    expect(recordsOf(name).map((record) => [record.kind, record.status, record.fault])).toEqual([
      ['object', 503, 'status 503 before'],
      ['object', 200, undefined],
    ]);
  });

  it('media: reset before answering, or after the head and afterBytes of the body', async () => {
    const { name, data } = stored(64 * 1024);
    gcs.inject({ match: { kind: 'media', object: name, nth: 0 }, action: { type: 'reset' } });
    gcs.inject({ match: { kind: 'media', object: name, nth: 1 }, action: { type: 'reset', afterBytes: 1000 } });
    gcs.inject({ match: { kind: 'media', object: name, nth: 2 }, action: { type: 'reset', afterBytes: 0 } });
    const before = await rawGet(mediaUrl(name));
    expect(before.status).toBeUndefined();
    expect(before.error).toBe('ECONNRESET');
    const cut = await rawGet(mediaUrl(name), { range: 'bytes=100-' });
    expect(cut.status).toBe(206);
    expect(cut.headers['content-range']).toBe(`bytes 100-${data.length - 1}/${data.length}`);
    expect(cut.error).toBeDefined();
    expect(cut.body.equals(data.subarray(100, 1100))).toBe(true);
    const headOnly = await rawGet(mediaUrl(name));
    expect(headOnly.status).toBe(200);
    expect(headOnly.body.length).toBe(0);
    expect(headOnly.error).toBeDefined();
    const whole = await rawGet(mediaUrl(name));
    expect([whole.status, whole.error, whole.body.equals(data)]).toEqual([200, undefined, true]);
    expect(recordsOf(name).map((record) => [record.status, record.fault])).toEqual([
      ['reset', 'reset'],
      ['reset', 'reset after 1000'],
      ['reset', 'reset after 0'],
      [200, undefined],
    ]);
  });

  it('a metadata reset cuts the JSON resource after afterBytes', async () => {
    const { name } = stored(10);
    gcs.inject({ match: { kind: 'metadata', object: name }, action: { type: 'reset', afterBytes: 5 } });
    const cut = await rawGet(metadataUrl(name));
    expect([cut.status, cut.body.toString()]).toEqual([200, '{"kin']);
    expect(cut.error).toBeDefined();
  });

  it('media rules match the bytes a Range asks for, and fire whether the object exists or not', async () => {
    const { name } = stored(1000);
    gcs.inject({ match: { kind: 'media', object: name, offset: 500, times: Infinity }, action: { type: 'status', status: 429 } });
    expect((await rawGet(mediaUrl(name), { range: 'bytes=0-499' })).status).toBe(206);
    expect((await rawGet(mediaUrl(name), { range: 'bytes=400-599' })).status).toBe(429);
    expect((await rawGet(mediaUrl(name), { range: 'bytes=501-' })).status).toBe(206);
    expect((await rawGet(mediaUrl(name))).status).toBe(429); // no Range: every byte
    expect((await rawGet(mediaUrl(name), { range: 'bytes=-10' })).status).toBe(206); // a suffix: not known in advance
    gcs.deleteObject(BUCKET, name);
    expect((await rawGet(mediaUrl(name), { range: 'bytes=500-' })).status).toBe(429);
    gcs.clearFaults();
    expect((await rawGet(mediaUrl(name), { range: 'bytes=500-' })).status).toBe(404);
  });

  it('rules without a kind stay with uploads; read rules never fire on uploads', async () => {
    const { name } = stored(10);
    gcs.inject({ match: { object: name }, action: { type: 'status', status: 500 } });
    expect((await fetch(metadataUrl(name))).status).toBe(200);
    expect((await rawGet(mediaUrl(name))).status).toBe(200);
    expect(gcs.pendingFaults).toBe(1);
    gcs.clearFaults();
    gcs.inject({ match: { kind: 'media' }, action: { type: 'status', status: 500 } });
    const open = await fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=x`, { method: 'POST' });
    expect(open.status).toBe(200);
    expect(gcs.pendingFaults).toBe(1);
  });

  it('serves Range reads as GCS does: 206 with Content-Range, clamped to the size; 416 past the end', async () => {
    const { name, data } = stored(300);
    const ranged = await rawGet(mediaUrl(name), { range: 'bytes=250-999' });
    expect([ranged.status, ranged.headers['content-range'], ranged.headers['content-length']]).toEqual([206, 'bytes 250-299/300', '50']);
    expect(ranged.body.equals(data.subarray(250))).toBe(true);
    const past = await rawGet(mediaUrl(name), { range: 'bytes=300-' });
    expect([past.status, past.headers['content-range']]).toEqual([416, 'bytes */300']);
  });

  it('rejects read rules that cannot apply to a read', () => {
    const bad: FaultRule[] = [
      { match: { kind: 'media', session: 0 }, action: { type: 'reset' } },
      { match: { kind: 'metadata', offset: 0 }, action: { type: 'reset' } },
      { match: { kind: 'media' }, action: { type: 'partial', bytes: 1 } },
      { match: { kind: 'media' }, action: { type: 'corrupt' } },
      { match: { kind: 'metadata' }, action: { type: 'status', status: 503, when: 'after' } },
      { match: { kind: 'metadata' }, action: { type: 'reset', afterBytes: -1 } },
    ];
    for (const rule of bad) expect(() => validateFaultRule(rule), JSON.stringify(rule)).toThrow(RangeError);
    expect(() => validateFaultRule({ match: { kind: 'media', offset: 7 }, action: { type: 'latency', ms: 1 } })).not.toThrow();
  });
});
