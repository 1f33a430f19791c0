import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { unauthenticatedClient } from '../src/core/auth.js';
import { crc32cToBase64 } from '../src/core/checksum.js';
import { combineCrc32cs } from '../src/core/crc32c-combine.js';
import { normalizeOptions, normalizeRetry } from '../src/core/options.js';
import {
  ComposeSourceNotFoundError,
  InvalidArgumentError,
  PreconditionFailedError,
  RetryExhaustedError,
  UploadAbortedError,
} from '../src/index.js';
import { ObjectApi, type ListedObject } from '../src/parallel/object-api.js';
import type { RetryEvent } from '../src/core/retry.js';
import type { StoredObject } from '../src/testing/index.js';
import { BUCKET, FAST_RETRY, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

function api(
  extra: { userProject?: string; requestHeaders?: Record<string, string>; onRetry?: (event: RetryEvent) => void } = {},
): ObjectApi {
  return new ObjectApi({ client: unauthenticatedClient, apiEndpoint: ctx.server.url, retry: normalizeRetry(FAST_RETRY), ...extra });
}

let counter = 0;
function uniqueName(base: string): string {
  counter += 1;
  return `api-${base}-${counter}`;
}

function putParts(prefix: string, count: number): StoredObject[] {
  return Array.from({ length: count }, (_, i) => ctx.server.putObject(BUCKET, `${prefix}/${i}`, randomBytes(500 + i)));
}

function expectOf(parts: readonly StoredObject[]): { size: number; crc32c: string } {
  return {
    size: parts.reduce((sum, part) => sum + part.data.length, 0),
    crc32c: crc32cToBase64(combineCrc32cs(parts.map((part) => ({ crc32c: crc32c(part.data), size: part.data.length })))),
  };
}

describe('composeObject', () => {
  it('composes in order with the destination resource and preconditions, and returns componentCount and the CRC32C', async () => {
    const parts = putParts(uniqueName('parts'), 3);
    const name = uniqueName('composed');
    const object = await api().composeObject({
      bucket: BUCKET,
      name,
      sources: parts.map((part) => ({ name: part.name, generation: part.resource.generation })),
      destination: { contentType: 'application/x-ndjson', metadata: { origin: 'test' } },
      preconditions: { ifGenerationMatch: 0 },
      kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k',
    });
    expect(object).toMatchObject({
      name,
      componentCount: 3,
      contentType: 'application/x-ndjson',
      metadata: { origin: 'test' },
      ...expectOf(parts),
      size: String(expectOf(parts).size),
    });
    expect(object.md5Hash).toBeUndefined();
    expect(ctx.server.getObject(BUCKET, name)?.resource.kmsKeyName).toBe('projects/p/locations/l/keyRings/r/cryptoKeys/k');
    expect(ctx.server.getObject(BUCKET, name)?.data.equals(Buffer.concat(parts.map((part) => part.data)))).toBe(true);
  });

  it('retries transient answers and tells onRetry', async () => {
    const parts = putParts(uniqueName('retry'), 2);
    const name = uniqueName('retried');
    ctx.server.inject({ match: { kind: 'compose', object: name, times: 2 }, action: { type: 'status', status: 503 } });
    const retries: RetryEvent[] = [];
    const object = await api({ onRetry: (event) => retries.push(event) }).composeObject({ bucket: BUCKET, name, sources: parts });
    expect(object.componentCount).toBe(2);
    expect(retries.map((event) => event.error.status)).toEqual([503, 503]);
  });

  it('a lost answer under ifGenerationMatch: 0 is recognised by `expect` on the retry instead of failing with 412', async () => {
    const parts = putParts(uniqueName('lost'), 2);
    const name = uniqueName('lost-answer');
    ctx.server.inject({ match: { kind: 'compose', object: name }, action: { type: 'drop-response' } });
    const object = await api().composeObject({
      bucket: BUCKET,
      name,
      sources: parts,
      preconditions: { ifGenerationMatch: 0 },
      expect: expectOf(parts),
    });
    expect(object.crc32c).toBe(expectOf(parts).crc32c);
    expect(ctx.server.getObject(BUCKET, name)?.resource.generation).toBe(object.generation);

    // Without `expect` the 412 of the retry is reported as it is.
    const other = uniqueName('lost-answer');
    ctx.server.inject({ match: { kind: 'compose', object: other }, action: { type: 'drop-response' } });
    await expect(
      api().composeObject({ bucket: BUCKET, name: other, sources: parts, preconditions: { ifGenerationMatch: 0 } }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('412 is PreconditionFailedError and changes nothing', async () => {
    const parts = putParts(uniqueName('pre'), 1);
    const name = uniqueName('pre-dest');
    ctx.server.putObject(BUCKET, name, Buffer.from('existing'));
    await expect(
      api().composeObject({ bucket: BUCKET, name, sources: parts, preconditions: { ifGenerationMatch: 0 } }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe('existing');
  });

  it('a missing source is ComposeSourceNotFoundError naming it, not retried', async () => {
    const parts = putParts(uniqueName('missing'), 2);
    const name = uniqueName('missing-dest');
    const before = ctx.server.requests.length;
    const error = await api()
      .composeObject({ bucket: BUCKET, name, sources: [...parts, { name: 'gone/part-7' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ComposeSourceNotFoundError);
    expect(error).toMatchObject({ code: 'ERR_GCS_UPLOAD_COMPOSE_SOURCE_NOT_FOUND', sourceName: 'gone/part-7', status: 404 });
    expect(ctx.server.requests.length - before).toBe(1);
  });

  it('refuses no sources or more than 32 before sending anything', async () => {
    const before = ctx.server.requests.length;
    const sources = Array.from({ length: 33 }, (_, i) => ({ name: `p/${i}` }));
    await expect(api().composeObject({ bucket: BUCKET, name: 'x', sources })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(api().composeObject({ bucket: BUCKET, name: 'x', sources: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(ctx.server.requests.length).toBe(before);
  });

  it('sends userProject and the request headers', async () => {
    const parts = putParts(uniqueName('headers'), 1);
    const name = uniqueName('headers-dest');
    await api({ userProject: 'billing-project', requestHeaders: { 'X-Trace': 'compose-trace' } }).composeObject({
      bucket: BUCKET,
      name,
      sources: parts,
    });
    const record = ctx.server.requests.find((request) => request.trace === 'compose-trace');
    expect(record?.path).toContain('userProject=billing-project');
    expect(record?.path).toContain('/compose');
  });
});

describe('deleteObject', () => {
  it('deletes, and a 404 is `gone`, not an error', async () => {
    const [part] = putParts(uniqueName('delete'), 1) as [StoredObject];
    expect(await api().deleteObject({ bucket: BUCKET, name: part.name, generation: part.resource.generation })).toBe('deleted');
    expect(ctx.server.getObject(BUCKET, part.name)).toBeUndefined();
    expect(await api().deleteObject({ bucket: BUCKET, name: part.name })).toBe('gone');
  });

  it('retries transient answers; a lost answer ends in `gone` on the retry, not a retry storm', async () => {
    const [a, b] = putParts(uniqueName('delete-retry'), 2) as [StoredObject, StoredObject];
    ctx.server.inject({ match: { kind: 'delete', object: a.name }, action: { type: 'status', status: 503 } });
    expect(await api().deleteObject({ bucket: BUCKET, name: a.name })).toBe('deleted');
    ctx.server.inject({ match: { kind: 'delete', object: b.name }, action: { type: 'drop-response' } });
    const before = ctx.server.requests.length;
    expect(await api().deleteObject({ bucket: BUCKET, name: b.name })).toBe('gone');
    expect(ctx.server.requests.length - before).toBe(2);
  });

  it('gives up with RetryExhaustedError when the server keeps failing, and stops at once on abort', async () => {
    const [part] = putParts(uniqueName('delete-exhausted'), 1) as [StoredObject];
    ctx.server.inject({ match: { kind: 'delete', object: part.name, times: Infinity }, action: { type: 'status', status: 500 } });
    await expect(api().deleteObject({ bucket: BUCKET, name: part.name })).rejects.toBeInstanceOf(RetryExhaustedError);
    const controller = new AbortController();
    controller.abort(new UploadAbortedError());
    await expect(api().deleteObject({ bucket: BUCKET, name: part.name, signal: controller.signal })).rejects.toBeInstanceOf(
      UploadAbortedError,
    );
    ctx.server.clearFaults();
    expect(ctx.server.getObject(BUCKET, part.name)).toBeDefined();
  });
});

describe('listObjects', () => {
  it('iterates every page (nextPageToken) of a prefix, with the fields cleanup needs, retrying a failed page', async () => {
    const prefix = uniqueName('list');
    const parts = putParts(prefix, 7);
    ctx.server.putObject(BUCKET, `${prefix}x`, Buffer.from('not under the prefix/'));
    ctx.server.inject({ match: { kind: 'list', nth: 1 }, action: { type: 'reset' } });
    const listed: ListedObject[] = [];
    let pages = 0;
    for await (const page of api().listObjects({ bucket: BUCKET, prefix: `${prefix}/`, maxResults: 3 })) {
      pages += 1;
      listed.push(...page.items);
    }
    expect(pages).toBe(3);
    expect(listed.map((item) => item.name)).toEqual(parts.map((part) => part.name).sort());
    const first = listed[0]!;
    const stored = ctx.server.getObject(BUCKET, first.name)!;
    expect(first).toEqual({
      bucket: BUCKET,
      name: stored.name,
      generation: stored.resource.generation,
      size: stored.data.length,
      timeCreated: stored.resource.timeCreated,
      crc32c: stored.resource.crc32c,
      componentCount: undefined,
    });
  });

  it('an empty prefix lists nothing in one page', async () => {
    const pages = [];
    for await (const page of api().listObjects({ bucket: BUCKET, prefix: 'nothing-under-here/' })) pages.push(page);
    expect(pages).toEqual([{ items: [], nextPageToken: undefined }]);
  });
});

describe('ObjectApi.fromOptions', () => {
  it("takes the stream options' endpoint, userProject, headers and retry", async () => {
    const options = normalizeOptions({
      bucket: BUCKET,
      name: 'x',
      apiEndpoint: ctx.server.url,
      userProject: 'from-options',
      requestHeaders: { 'X-Trace': 'from-options' },
      retry: FAST_RETRY,
    });
    const [part] = putParts(uniqueName('from-options'), 1) as [StoredObject];
    expect(await ObjectApi.fromOptions(options).deleteObject({ bucket: BUCKET, name: part.name })).toBe('deleted');
    const record = ctx.server.requests.find((request) => request.trace === 'from-options');
    expect(record?.path).toContain('userProject=from-options');
  });
});
