import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream, GcsUploadError, ProtocolError } from '../src/index.js';
import { startLocalGcs, type FaultRule, type LocalGcs } from '../src/testing/index.js';
import { runTsxScript } from './child.js';
import { BUCKET, FAST_RETRY, K256, KiB, uniqueName, useLocalGcs } from './helpers.js';

// The secrets of an upload: the access token, the session URI's upload id (a bearer capability), and the data.

const ctx = useLocalGcs();
const TOKEN = 'ya29.SECRET-a0b1c2d3e4f5-token-never-to-be-printed';
// A stall timeout only the stall cases need to run out: an ordinary answer on a loaded machine can take 300 ms.
const RETRY = { ...FAST_RETRY, stallTimeoutMs: 2_000, maxAttempts: 2 };

/** An auth client that adds `Authorization: Bearer TOKEN` to every request, as google-auth-library does. */
function bearerClient(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: TOKEN, expiry_date: Date.now() + 24 * 3_600_000 });
  return client;
}

/** Distinctive ASCII object data, so that any copy of it in text output is easy to spot. */
function payload(size: number): Buffer {
  const unit = Buffer.from('CONFIDENTIAL-OBJECT-DATA-0123456789|', 'ascii');
  const out = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += unit.length) unit.copy(out, at, 0, Math.min(unit.length, size - at));
  return out;
}
const DATA_SAMPLE = 'CONFIDENTIAL-OBJECT';
/** How `util.inspect` prints a Buffer holding the sample: as hex bytes. */
const DATA_SAMPLE_HEX = [...Buffer.from(DATA_SAMPLE.slice(0, 12), 'ascii')].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');

/** Every way a user might print an error. */
function renderings(error: unknown): Record<string, string> {
  const err = error as Error;
  return {
    message: err.message,
    String: String(err),
    stack: err.stack ?? '',
    inspect: inspect(err, { depth: Infinity, showHidden: false }),
    json: JSON.stringify(err),
  };
}

/** The secrets found in `text`, by name. */
function secretsIn(text: string, uploadId: string | undefined): string[] {
  const found: string[] = [];
  if (text.includes(TOKEN) || text.includes('SECRET-a0b1')) found.push('access token');
  if (uploadId !== undefined && text.includes(uploadId)) found.push('upload id');
  if (text.includes(DATA_SAMPLE) || text.includes(DATA_SAMPLE_HEX)) found.push('object data');
  return found;
}

interface Failed {
  error: GcsUploadError;
  uploadId: string | undefined;
}

async function failingUpload(server: LocalGcs, rules: FaultRule[], size = 3 * K256 + 10): Promise<Failed> {
  const name = uniqueName('secret');
  for (const rule of rules) server.inject({ match: { ...rule.match, object: name }, action: rule.action });
  const stream = createGcsWriteStream({
    bucket: BUCKET,
    name,
    apiEndpoint: server.url,
    chunkSize: K256,
    adaptiveRequests: false, // the faults aim at the request at offset 256 KiB
    authClient: bearerClient(),
    retry: RETRY,
  });
  let uploadId: string | undefined;
  stream.on('session', (uri) => {
    uploadId = new URL(uri).searchParams.get('upload_id') ?? undefined;
  });
  const error = await pipeline(Readable.from([payload(size)]), stream).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GcsUploadError);
  expect(server.getObject(BUCKET, name)).toBeUndefined();
  return { error: error as GcsUploadError, uploadId };
}

describe('the access token goes only to the configured endpoint', () => {
  let foreign: LocalGcs;
  beforeAll(async () => {
    foreign = await startLocalGcs();
  });
  afterAll(async () => {
    await foreign.close();
  });

  it('a session URI on another origin is refused before any request is sent there', async () => {
    const { error } = await failingUpload(ctx.server, [
      { match: { kind: 'open' }, action: { type: 'hostile', variant: 'foreign-location', url: foreign.url } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/another origin/);
    expect(foreign.requests).toEqual([]);
    expect(foreign.sessionCount).toBe(0);
  });

  it('the same origin with another port counts as another origin', async () => {
    const port = Number(new URL(foreign.url).port);
    const { error } = await failingUpload(ctx.server, [
      { match: { kind: 'open' }, action: { type: 'hostile', variant: 'foreign-location', url: `http://127.0.0.1:${port}` } },
    ]);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(foreign.requests).toEqual([]);
  });
});

describe('errors never carry the token, the upload id or object data', () => {
  const failures: Array<[string, FaultRule[]]> = [
    [
      '400 whose message echoes the URL and the Authorization header',
      [
        {
          match: { kind: 'chunk', offset: K256 },
          action: { type: 'status', status: 400, message: 'Bad request {url} from {authorization}' },
        },
      ],
    ],
    [
      '403 whose message echoes the URL',
      [{ match: { kind: 'chunk', offset: K256 }, action: { type: 'status', status: 403, message: 'Forbidden: {url}' } }],
    ],
    [
      '401 whose message echoes the Authorization header',
      [
        {
          match: { kind: 'chunk', offset: K256, times: Infinity },
          action: { type: 'status', status: 401, message: 'Invalid {authorization}' },
        },
      ],
    ],
    [
      '404 on open whose message echoes the URL',
      [{ match: { kind: 'open' }, action: { type: 'status', status: 404, message: 'No such bucket: {url}' } }],
    ],
    [
      '503 for ever whose message echoes the URL',
      [{ match: { kind: 'chunk', offset: K256, times: Infinity }, action: { type: 'status', status: 503, message: 'Unavailable: {url}' } }],
    ],
    ['network reset on a chunk, for ever', [{ match: { kind: 'chunk', offset: K256, times: Infinity }, action: { type: 'reset' } }]],
    [
      'network reset on the status query, for ever',
      [
        { match: { kind: 'chunk', offset: K256 }, action: { type: 'status', status: 503 } },
        { match: { kind: 'query', times: Infinity }, action: { type: 'reset' } },
      ],
    ],
    ['network reset on open, for ever', [{ match: { kind: 'open', times: Infinity }, action: { type: 'reset' } }]],
    ['no answer, for ever', [{ match: { kind: 'chunk', offset: K256, times: Infinity }, action: { type: 'stall' } }]],
    ['session expired', [{ match: { kind: 'chunk', offset: K256 }, action: { type: 'expire', status: 410 } }]],
    ['protocol: malformed Range', [{ match: { kind: 'chunk', offset: K256 }, action: { type: 'hostile', variant: 'bad-range' } }]],
    [
      'protocol: offset going backwards',
      [{ match: { kind: 'chunk', offset: 2 * K256 }, action: { type: 'hostile', variant: 'range-backwards' } }],
    ],
    ['protocol: not an object resource', [{ match: { kind: 'final' }, action: { type: 'hostile', variant: 'bad-object' } }]],
    ['protocol: session on another origin', [{ match: { kind: 'open' }, action: { type: 'hostile', variant: 'foreign-location' } }]],
    ['checksum refused (data corrupted in transit)', [{ match: { kind: 'chunk', offset: K256 }, action: { type: 'corrupt', at: 7 } }]],
  ];
  for (const [label, rules] of failures) {
    it(label, async () => {
      const { error, uploadId } = await failingUpload(ctx.server, rules);
      if (error.uploadUri !== undefined) {
        // The test knows the secret it looks for: the non-enumerable uploadUri carries it, and only there.
        expect(error.uploadUri).toContain(`upload_id=${uploadId}`);
        expect(Object.keys(error)).not.toContain('uploadUri');
      }
      const leaks = Object.entries(renderings(error)).flatMap(([how, text]) =>
        secretsIn(text, uploadId).map((what) => `${what} in ${how}`),
      );
      expect(leaks).toEqual([]);
    });
  }
});

describe('NODE_DEBUG=gcs-resumable-stream output', () => {
  it('shows requests, retries and failures, never the token, the upload id or object data', async () => {
    const src = (path: string): string => JSON.stringify(join(import.meta.dirname, '..', 'src', path));
    // The child starts its own server, uploads once through faults (recovered) and once into a 400 that echoes
    // the URL and the Authorization header (failed), and prints the upload ids it saw (the parent looks for them).
    const script = `
      import { Readable } from 'node:stream';
      import { pipeline } from 'node:stream/promises';
      import { OAuth2Client } from 'google-auth-library';
      import { createGcsWriteStream } from ${src('index.ts')};
      import { startLocalGcs } from ${src('testing/index.ts')};
      const server = await startLocalGcs();
      const K256 = 256 * 1024;
      server.inject({ match: { kind: 'chunk', offset: 0, object: 'ok' }, action: { type: 'reset' } });
      server.inject({ match: { kind: 'chunk', offset: K256, object: 'ok' }, action: { type: 'status', status: 503 } });
      server.inject({ match: { kind: 'final', object: 'ok' }, action: { type: 'drop-response' } });
      server.inject({ match: { kind: 'chunk', offset: K256, object: 'bad' }, action: { type: 'status', status: 400, message: 'Bad {url} {authorization}' } });
      const data = Buffer.from(${JSON.stringify(`${DATA_SAMPLE}-0123456789|`)}.repeat(30000), 'ascii');
      for (const name of ['ok', 'bad']) {
        const authClient = new OAuth2Client();
        authClient.setCredentials({ access_token: ${JSON.stringify(TOKEN)}, expiry_date: Date.now() + 86400000 });
        const stream = createGcsWriteStream({ bucket: 'debug-bucket', name, apiEndpoint: server.url, chunkSize: K256, adaptiveRequests: false, authClient,
          retry: { initialDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 2000 } });
        stream.on('session', (uri) => console.log('upload-id ' + new URL(uri).searchParams.get('upload_id')));
        const outcome = await pipeline(Readable.from([data]), stream).then(() => 'finished', (e) => e.code);
        console.log('outcome ' + name + ' ' + outcome);
      }
      await server.close();
    `;
    const { code, stdout, stderr } = await runTsxScript(script, {
      cwd: join(import.meta.dirname, '..'),
      env: { NODE_DEBUG: 'gcs-resumable-stream' },
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^outcome ok finished$/m);
    expect(stdout).toMatch(/^outcome bad ERR_GCS_UPLOAD_HTTP_STATUS$/m);
    const ids = [...stdout.matchAll(/^upload-id (\S+)$/gm)].map((match) => match[1]!);
    expect(ids).toHaveLength(2);

    expect(stderr).toMatch(/GCS-RESUMABLE-STREAM \d+: request method=POST/);
    expect(stderr).toMatch(/GCS-RESUMABLE-STREAM \d+: request method=PUT .*range="bytes 0-262143\/\*"/);
    expect(stderr).toMatch(/GCS-RESUMABLE-STREAM \d+: retry /);
    expect(stderr).toMatch(/GCS-RESUMABLE-STREAM \d+: upload failed /);
    expect(stderr).not.toContain(TOKEN);
    expect(stderr).not.toContain('SECRET-a0b1');
    for (const id of ids) expect(stderr).not.toContain(id);
    expect(stderr).not.toContain(DATA_SAMPLE);
    expect(stderr).not.toContain(DATA_SAMPLE_HEX);
  });
});

describe('the distinctive payload', () => {
  it('is what the leak checks look for', () => {
    const text = inspect(payload(64 * KiB));
    expect(secretsIn(text, undefined)).toEqual(['object data']);
  });
});
