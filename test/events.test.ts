import { pipeline } from 'node:stream/promises';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, type UploadProgress } from '../src/index.js';
import { expectedDigest, K256, source, storedDigest, streamOptions, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();

describe('events and properties', () => {
  it('session, progress (monotonic), finish; uploadUri and object set', async () => {
    const name = uniqueName('events');
    const stream = createGcsWriteStream(streamOptions(ctx.server, name));
    const seen: string[] = [];
    const progress: UploadProgress[] = [];
    stream.on('session', (uri) => seen.push(`session ${uri === stream.uploadUri}`));
    stream.on('progress', (p) => progress.push(p));
    stream.on('finish', () => seen.push('finish'));
    stream.on('error', () => seen.push('error'));
    await pipeline(source(5 * K256 + 1, 70_000), stream);
    expect(seen).toEqual(['session true', 'finish']);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.bytesAccepted).toBeGreaterThanOrEqual(progress[i - 1]!.bytesAccepted);
      expect(progress[i]!.bytesCommitted).toBeGreaterThanOrEqual(progress[i - 1]!.bytesCommitted);
    }
    expect(progress.at(-1)).toEqual({ bytesAccepted: 5 * K256 + 1, bytesCommitted: 5 * K256 + 1 });
    expect(stream.object).toMatchObject({ bucket: 'test-bucket', name, size: String(5 * K256 + 1) });
  });

  it('a 503 when opening the session is retried', async () => {
    const name = uniqueName('open-503');
    ctx.server.inject({ match: { kind: 'open', object: name, times: 2 }, action: { type: 'status', status: 503 } });
    const { error } = await upload(ctx.server, name, K256 + 5, 10_000);
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(K256 + 5));
  });

  it('a 401 lets the auth client refresh its token once, then the upload goes on', async () => {
    const name = uniqueName('refresh');
    const client = new OAuth2Client();
    client.setCredentials({ access_token: 'stale-token' });
    let refreshed = 0;
    client.refreshHandler = () => {
      refreshed += 1;
      return Promise.resolve({ access_token: 'fresh-token', expiry_date: Date.now() + 3_600_000 });
    };
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 401 } });
    const { error } = await upload(ctx.server, name, 2 * K256 + 7, 10_000, { authClient: client });
    expect(error).toBeUndefined();
    expect(refreshed).toBe(1);
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(2 * K256 + 7));
  });
});
