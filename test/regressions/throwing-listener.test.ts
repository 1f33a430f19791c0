import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createGcsWriteStream, ListenerError } from '../../src/index.js';
import { BUCKET, contentAt, K256, streamOptions, uniqueName, useLocalGcs } from '../helpers.js';

// Defect 6 of issue 12. A listener that threw surfaced as a retried NetworkError; while opening, each retry opened a
// new session (8 were seen). A listener's exception is the caller's bug: the upload ends once, with that error as
// the cause, the open session is cancelled, and no further request is made.

const ctx = useLocalGcs();
const SIZE = 3 * K256 + 17;

for (const event of ['session', 'checkpoint', 'progress', 'retry'] as const) {
  describe(`a '${event}' listener that throws`, () => {
    it('ends the upload once with a ListenerError, one session, cancelled, no object', async () => {
      const name = uniqueName(`listener-${event}`);
      // A transient fault so that a retry event fires.
      if (event === 'retry')
        ctx.server.inject({ match: { kind: 'chunk', offset: 0, object: name }, action: { type: 'status', status: 503 } });
      const bug = new Error(`bug in the ${event} handler`);
      const stream = createGcsWriteStream(streamOptions(ctx.server, name));
      stream.on(event, () => {
        throw bug;
      });
      const error = await pipeline([contentAt(0, SIZE)], stream).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ListenerError);
      expect((error as ListenerError).cause).toBe(bug);
      expect((error as ListenerError).event).toBe(event);
      expect((error as Error).message).toContain(`bug in the ${event} handler`);
      const sessions = ctx.server.listSessions().filter((s) => s.name === name);
      expect(sessions.map((s) => s.state)).toEqual(['cancelled']);
      expect(ctx.server.getObject(BUCKET, name)).toBeUndefined();
      // Nothing after the cancel: it is the session's last request.
      const requests = ctx.server.requests.filter((r) => r.object === name);
      expect(requests.at(-1)?.kind).toBe('cancel');
    });
  });
}
