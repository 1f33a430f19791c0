/**
 * `gcs-stream cleanup gs://BUCKET[/PREFIX] [--older-than AGE] [--dry-run]`: deletes the temporary part objects left
 * under the prefix (default `gcs-stream-parts/`) that are older than the age (default 24h), and says which it could
 * not delete.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unauthenticatedClient } from '../src/core/auth.js';
import { normalizeRetry } from '../src/core/options.js';
import { cleanupParts, DEFAULT_PART_PREFIX, parseAge, parseGsPrefix } from '../src/cli/cleanup.js';
import { UsageError } from '../src/cli/usage-error.js';
import { ObjectApi } from '../src/parallel/object-api.js';
import { startTsx } from './child.js';
import { BUCKET, FAST_RETRY, uniqueName, useLocalGcs } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const ctx = useLocalGcs();

const DAY_MS = 24 * 60 * 60 * 1000;
const LONG_AGO = '2020-01-01T00:00:00.000Z';

/** An object under `prefix` created `LONG_AGO` (the server stamps now; a test cannot wait a day). */
function oldPart(name: string): void {
  const object = ctx.server.putObject(BUCKET, name, Buffer.from(`part ${name}`));
  object.resource.timeCreated = LONG_AGO;
}

function api(): ObjectApi {
  return new ObjectApi({ client: unauthenticatedClient, apiEndpoint: ctx.server.url, retry: normalizeRetry(FAST_RETRY) });
}

function cleanupCli(args: string[]) {
  return startTsx(CLI, ['cleanup', ...args, '--endpoint', ctx.server.url], { cwd: ROOT });
}

describe('cleanupParts', () => {
  it('deletes the old objects under the prefix, keeps the new ones and those elsewhere, across pages', async () => {
    const prefix = `${uniqueName('parts')}/`;
    const old = Array.from({ length: 12 }, (_, i) => `${prefix}upload-a/${i}`);
    for (const name of old) oldPart(name);
    ctx.server.putObject(BUCKET, `${prefix}upload-b/0`, Buffer.from('still uploading'));
    oldPart(`${prefix.slice(0, -1)}-other/0`);
    const report = await cleanupParts({ api: api(), bucket: BUCKET, prefix, olderThanMs: DAY_MS, pageSize: 5 });
    expect(report.deleted.map((object) => object.name).sort()).toEqual([...old].sort());
    expect(report.failed).toEqual([]);
    expect(report.kept).toBe(1);
    expect(
      ctx.server
        .listObjects(BUCKET)
        .filter((object) => object.name.startsWith(prefix))
        .map((object) => object.name),
    ).toEqual([`${prefix}upload-b/0`]);
    expect(ctx.server.getObject(BUCKET, `${prefix.slice(0, -1)}-other/0`)).toBeDefined();
  });

  it('reports the objects it could not delete and deletes the rest', async () => {
    const prefix = `${uniqueName('denied')}/`;
    for (const i of [0, 1, 2]) oldPart(`${prefix}${i}`);
    ctx.server.inject({ match: { kind: 'delete', object: `${prefix}1`, times: Infinity }, action: { type: 'status', status: 403 } });
    try {
      const report = await cleanupParts({ api: api(), bucket: BUCKET, prefix, olderThanMs: DAY_MS });
      expect(report.deleted.map((object) => object.name).sort()).toEqual([`${prefix}0`, `${prefix}2`]);
      expect(report.failed.map(({ object }) => object.name)).toEqual([`${prefix}1`]);
      expect(report.failed[0]?.error).toMatchObject({ code: 'ERR_GCS_UPLOAD_PERMISSION_DENIED' });
      expect(ctx.server.getObject(BUCKET, `${prefix}1`)).toBeDefined();
    } finally {
      ctx.server.clearFaults();
    }
  });

  it('leaves an object written again since the listing alone (deletes the generation listed)', async () => {
    const prefix = `${uniqueName('rewritten')}/`;
    oldPart(`${prefix}0`);
    const settings = { client: unauthenticatedClient, apiEndpoint: ctx.server.url, retry: normalizeRetry(FAST_RETRY) };
    /** Writes the object again between the listing and the deletes. */
    class RacingApi extends ObjectApi {
      override async *listObjects(request: Parameters<ObjectApi['listObjects']>[0]): ReturnType<ObjectApi['listObjects']> {
        for await (const page of super.listObjects(request)) {
          ctx.server.putObject(BUCKET, `${prefix}0`, Buffer.from('new generation'));
          yield page;
        }
      }
    }
    const report = await cleanupParts({ api: new RacingApi(settings), bucket: BUCKET, prefix, olderThanMs: DAY_MS });
    expect(report.failed).toEqual([]);
    expect(ctx.server.getObject(BUCKET, `${prefix}0`)?.data.toString()).toBe('new generation');
  });
});

describe('arguments', () => {
  it('parses gs://BUCKET[/PREFIX] and ages', () => {
    expect(parseGsPrefix('gs://b')).toEqual({ bucket: 'b', prefix: DEFAULT_PART_PREFIX });
    expect(parseGsPrefix('gs://b/')).toEqual({ bucket: 'b', prefix: DEFAULT_PART_PREFIX });
    expect(parseGsPrefix('gs://b/my parts/')).toEqual({ bucket: 'b', prefix: 'my parts/' });
    expect(() => parseGsPrefix('b/parts')).toThrow(UsageError);
    expect(() => parseGsPrefix('gs:///parts')).toThrow(UsageError);
    expect(parseAge('0')).toBe(0);
    expect(parseAge('90s')).toBe(90_000);
    expect(parseAge('12h')).toBe(12 * 3_600_000);
    expect(parseAge('7d')).toBe(7 * DAY_MS);
    for (const bad of ['12', '-1h', 'soon', '1w']) expect(() => parseAge(bad)).toThrow(UsageError);
  });
});

describe('gcs-stream cleanup', () => {
  it('deletes what is due under the default prefix, prints each, and --dry-run deletes nothing', async () => {
    const bucket = 'cleanup-cli-bucket';
    const upload = uniqueName('upload');
    const old = `${DEFAULT_PART_PREFIX}${upload}/0`;
    ctx.server.putObject(bucket, old, Buffer.from('old part')).resource.timeCreated = LONG_AGO;
    ctx.server.putObject(bucket, `${DEFAULT_PART_PREFIX}${upload}/1`, Buffer.from('young part'));
    ctx.server.putObject(bucket, 'final-object', Buffer.from('not a part')).resource.timeCreated = LONG_AGO;

    const dry = await cleanupCli([`gs://${bucket}`, '--dry-run']).exited;
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(`would delete gs://${bucket}/${old} (8 bytes, created ${LONG_AGO})\n`);
    expect(ctx.server.getObject(bucket, old)).toBeDefined();

    const real = await cleanupCli([`gs://${bucket}`]).exited;
    expect(real.code).toBe(0);
    expect(real.stdout).toBe(`deleted gs://${bucket}/${old} (8 bytes, created ${LONG_AGO})\n`);
    expect(real.stderr).toContain('1 deleted, 0 could not be deleted, 1 newer kept');
    expect(ctx.server.listObjects(bucket).map((object) => object.name)).toEqual(['final-object', `${DEFAULT_PART_PREFIX}${upload}/1`]);

    // --older-than 0: the young part is due too; a delete refused for good makes the exit code 1.
    ctx.server.inject({ match: { kind: 'delete', bucket, times: Infinity }, action: { type: 'status', status: 403 } });
    try {
      const refused = await cleanupCli([`gs://${bucket}/${DEFAULT_PART_PREFIX}`, '--older-than', '0']).exited;
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`could not delete gs://${bucket}/${DEFAULT_PART_PREFIX}${upload}/1`);
      expect(refused.stderr).toContain('HTTP 403');
    } finally {
      ctx.server.clearFaults();
    }
    const usage = await cleanupCli([`gs://${bucket}`, '--older-than', 'soon']).exited;
    expect(usage.code).toBe(2);
  });
});
