import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  createGcsWriteStream,
  HttpStatusError,
  InvalidArgumentError,
  ListenerError,
  PermissionDeniedError,
  type RetryQuestion,
} from '../src/index.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName, useLocalGcs } from './helpers.js';

// retry.shouldRetry: the user's veto or extension of the retry decision.

const ctx = useLocalGcs();
const SIZE = 2 * K256 + 9;

async function run(name: string, shouldRetry: (q: RetryQuestion) => boolean | undefined): Promise<unknown> {
  const stream = createGcsWriteStream(streamOptions(ctx.server, name, { retry: { shouldRetry } }));
  return pipeline([contentAt(0, SIZE)], stream).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('retry.shouldRetry', () => {
  it('false vetoes the retry of a transient failure: the upload fails with it at once, cancelled, no object', async () => {
    const name = uniqueName('veto');
    ctx.server.inject({ match: { kind: 'chunk', offset: K256, object: name }, action: { type: 'status', status: 503 } });
    const questions: RetryQuestion[] = [];
    const error = await run(name, (q) => {
      questions.push(q);
      return false;
    });
    expect(error).toBeInstanceOf(HttpStatusError);
    expect((error as HttpStatusError).status).toBe(503);
    expect(questions).toHaveLength(1);
    expect(questions[0]).toMatchObject({ attempt: 1, retryable: true });
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
    expect(ctx.server.listSessions().find((s) => s.name === name)?.state).toBe('cancelled');
  });

  it('true retries what the library would not (a 403 while a grant propagates), and the upload completes', async () => {
    const name = uniqueName('extend');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name, times: 2 }, action: { type: 'status', status: 403 } });
    const error = await run(name, (q) => (q.error instanceof PermissionDeniedError ? true : undefined));
    expect(error).toBeUndefined();
    expect(storedDigest(ctx.server, name)).toBe(expectedDigest(SIZE));
  });

  it('a hook that throws ends the upload with a ListenerError', async () => {
    const name = uniqueName('hook-throws');
    ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'status', status: 503 } });
    const bug = new Error('hook bug');
    const error = await run(name, () => {
      throw bug;
    });
    expect(error).toBeInstanceOf(ListenerError);
    expect((error as ListenerError).cause).toBe(bug);
    expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
  });

  it('must be a function', () => {
    expect(() => createGcsWriteStream(streamOptions(ctx.server, 'x', { retry: { shouldRetry: 42 as never } }))).toThrow(
      InvalidArgumentError,
    );
  });
});
