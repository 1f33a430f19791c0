import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  GcsUploadError,
  HttpStatusError,
  PermissionDeniedError,
  PreconditionFailedError,
  ProtocolError,
  RequestTimeoutError,
  RetryExhaustedError,
} from '../src/index.js';
import type { FaultAction, FaultMatch } from '../src/testing/index.js';
import { K256, KiB, storedDigest, uniqueName, upload, useLocalGcs } from './helpers.js';

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 10;

async function failWith(match: FaultMatch, action: FaultAction, retry = {}): Promise<GcsUploadError> {
  const name = uniqueName('err');
  ctx.server.inject({ match: { ...match, object: name }, action });
  const { error } = await upload(ctx.server, name, SIZE, 64 * KiB, { retry });
  ctx.server.clearFaults();
  expect(storedDigest(ctx.server, name)).toBeUndefined();
  expect(error).toBeInstanceOf(GcsUploadError);
  return error as GcsUploadError;
}

describe('non-retryable answers give typed errors and no object', () => {
  it('400 on a chunk', async () => {
    const error = await failWith({ kind: 'chunk', offset: K256 }, { type: 'status', status: 400 });
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error.status).toBe(400);
    expect(error.retryable).toBe(false);
    expect(error.bytesCommitted).toBe(K256);
    expect(error.message).toMatch(/HTTP 400/);
    expect(error.message).toMatch(/262144 of \d+ bytes committed; the session was cancelled/);
  });

  it('401 on a chunk', async () => {
    expect(await failWith({ kind: 'chunk', offset: 0 }, { type: 'status', status: 401 })).toBeInstanceOf(AuthenticationError);
  });

  it('403 on open', async () => {
    const error = await failWith({ kind: 'open' }, { type: 'status', status: 403 });
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error.message).toMatch(/no session was opened/);
  });

  it('412 on the final chunk', async () => {
    const error = await failWith({ kind: 'final' }, { type: 'status', status: 412 });
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect(error.code).toBe('ERR_GCS_UPLOAD_PRECONDITION_FAILED');
  });
});

describe('transient failures that never end exhaust the budget', () => {
  it('503 for ever -> RetryExhaustedError after maxAttempts', async () => {
    const error = await failWith({ kind: 'chunk', offset: K256, times: Infinity }, { type: 'status', status: 503 }, { maxAttempts: 3 });
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error.cause as GcsUploadError).status).toBe(503);
    expect(error.bytesCommitted).toBe(K256);
  });

  it('a server that never answers -> request timeouts, then RetryExhaustedError', async () => {
    const error = await failWith({ times: Infinity, kind: 'chunk' }, { type: 'stall' }, { maxAttempts: 2, stallTimeoutMs: 150 });
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error.cause).toBeInstanceOf(RequestTimeoutError);
  });

  it('a server that commits nothing for ever cannot spin the loop', async () => {
    const error = await failWith({ times: Infinity, kind: 'chunk', offset: 0 }, { type: 'partial', bytes: 0 }, { maxAttempts: 4 });
    expect(error).toBeInstanceOf(RetryExhaustedError);
  });
});

describe('protocol violations fail loudly and cancel', () => {
  it('308 with a malformed Range', async () => {
    expect(await failWith({ kind: 'chunk', offset: 0 }, { type: 'hostile', variant: 'bad-range' })).toBeInstanceOf(ProtocolError);
  });
  it('308 with a Range beyond what was sent', async () => {
    const error = await failWith({ kind: 'chunk', offset: K256 }, { type: 'hostile', variant: 'range-beyond' });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/only \d+ were sent/);
  });
  it('a committed offset that goes backwards', async () => {
    const error = await failWith({ kind: 'chunk', offset: 2 * K256 }, { type: 'hostile', variant: 'range-backwards' });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/went backwards/);
  });
  it('200 with a body that is not an object resource', async () => {
    expect(await failWith({ kind: 'final' }, { type: 'hostile', variant: 'bad-object' })).toBeInstanceOf(ProtocolError);
  });
  it('an open without Location', async () => {
    expect(await failWith({ kind: 'open' }, { type: 'hostile', variant: 'no-location' })).toBeInstanceOf(ProtocolError);
  });
  it('a Location on another origin', async () => {
    const error = await failWith({ kind: 'open' }, { type: 'hostile', variant: 'foreign-location' });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toMatch(/another origin/);
  });
});

describe('error messages', () => {
  it('never contain the session URI or its upload id', async () => {
    const error = await failWith({ kind: 'chunk', offset: K256 }, { type: 'status', status: 400 });
    expect(error.uploadUri).toMatch(/upload_id=/);
    expect(error.message).not.toMatch(/upload_id/);
    expect(JSON.stringify(error)).not.toMatch(/upload_id/);
    expect(Object.keys(error)).not.toContain('uploadUri');
  });
});
