import { describe, expect, it } from 'vitest';
import { PreconditionFailedError } from '../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const SIZE = 2 * K256 + 99;

describe('preconditions', () => {
  it('ifGenerationMatch: 0 creates a new object', async () => {
    const name = uniqueName('create-only');
    const { error } = await upload(ctx.server, name, SIZE, 50_000, { ifGenerationMatch: 0 });
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('ifGenerationMatch: 0 on an existing object fails with PreconditionFailedError, never retried, object untouched', async () => {
    const name = uniqueName('exists');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('keep me'));
    const before = ctx.server.requests.length;
    const { error } = await upload(ctx.server, name, SIZE, 50_000, { ifGenerationMatch: 0 });
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as PreconditionFailedError).status).toBe(412);
    expect(ctx.server.requests.slice(before).filter((r) => r.kind === 'open')).toHaveLength(1);
    expect(ctx.server.getObject(BUCKET, name)?.resource.generation).toBe(existing.resource.generation);
  });

  it('ifGenerationMatch on the current generation replaces it; on a stale one fails', async () => {
    const name = uniqueName('replace');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('v1'));
    const ok = await upload(ctx.server, name, SIZE, 50_000, { ifGenerationMatch: existing.resource.generation });
    expect(ok.error).toBeUndefined();
    expect(ok.stream.object?.generation).not.toBe(existing.resource.generation);
    const stale = await upload(ctx.server, name, SIZE, 50_000, { ifGenerationMatch: existing.resource.generation });
    expect(stale.error).toBeInstanceOf(PreconditionFailedError);
  });

  it('ifGenerationNotMatch, ifMetagenerationMatch and ifMetagenerationNotMatch are sent and enforced', async () => {
    const name = uniqueName('meta');
    const existing = ctx.server.putObject(BUCKET, name, Buffer.from('v1'));
    const generation = existing.resource.generation;
    expect((await upload(ctx.server, name, 10, 10, { ifGenerationNotMatch: generation })).error).toBeInstanceOf(PreconditionFailedError);
    expect((await upload(ctx.server, name, 10, 10, { ifMetagenerationNotMatch: 1 })).error).toBeInstanceOf(PreconditionFailedError);
    expect((await upload(ctx.server, name, 10, 10, { ifMetagenerationMatch: 2 })).error).toBeInstanceOf(PreconditionFailedError);
    expect((await upload(ctx.server, name, 10, 10, { ifMetagenerationMatch: 1 })).error).toBeUndefined();
  });

  it('a precondition that fails at finalize (the object changed meanwhile) is a PreconditionFailedError', async () => {
    const name = uniqueName('race');
    const stream = (await import('../src/index.js')).createGcsWriteStream({
      bucket: BUCKET,
      name,
      apiEndpoint: ctx.server.url,
      chunkSize: K256,
      ifGenerationMatch: 0,
    });
    const failed = new Promise<unknown>((resolve) => stream.on('error', resolve));
    await new Promise((resolve) => stream.once('session', resolve));
    ctx.server.putObject(BUCKET, name, Buffer.from('someone else won'));
    stream.end(contentAt(0, 100));
    expect(await failed).toBeInstanceOf(PreconditionFailedError);
    expect(ctx.server.getObject(BUCKET, name)?.data.toString()).toBe('someone else won');
  });
});

describe('object metadata', () => {
  it('contentType, contentEncoding, cacheControl, contentDisposition, custom metadata, predefinedAcl and kmsKeyName reach the object', async () => {
    const name = uniqueName('metadata');
    const { error, stream } = await upload(ctx.server, name, 1000, 100, {
      contentType: 'application/x-ndjson',
      metadata: {
        contentEncoding: 'gzip',
        cacheControl: 'private, max-age=0',
        contentDisposition: 'attachment; filename="x.ndjson.gz"',
        metadata: { owner: 'backup-job', run: '42' },
      },
      predefinedAcl: 'private',
      kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k',
    });
    expect(error).toBeUndefined();
    const resource = ctx.server.getObject(BUCKET, name)!.resource;
    expect(resource).toMatchObject({
      contentType: 'application/x-ndjson',
      contentEncoding: 'gzip',
      cacheControl: 'private, max-age=0',
      contentDisposition: 'attachment; filename="x.ndjson.gz"',
      metadata: { owner: 'backup-job', run: '42' },
    });
    expect(stream.object?.metadata).toEqual({ owner: 'backup-job', run: '42' });
  });
});
