import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsWriteStream } from '../../src/index.js';
import { startLocalGcs, type LocalGcs } from '../../src/testing/index.js';
import { until } from '../child.js';
import { BUCKET, contentAt, expectedDigest, K256, storedDigest, streamOptions, uniqueName } from '../helpers.js';

// Issue 22, item 5: the HTTP agent kept idle sockets until the server closed them, so a socket reused just as the
// server closed it failed with EPIPE. The client now closes an idle socket first: after 60 s, or after half the
// idle timeout the server announces (`Keep-Alive: timeout=N`), whichever is shorter.
//
// The server here closes idle connections after 4 s and says so; the client must close them after 2 s. Both timers
// run in this one process, started in the same exchange (the server's when its answer is written, the client's when
// it has read it), so load delays them alike: the client's fires 2 s before the server's, whatever the load.

let server: LocalGcs;
beforeAll(async () => {
  server = await startLocalGcs({ keepAliveTimeoutMs: 4_000 });
});
afterAll(async () => {
  await server.close();
});

/** Resolves once every connection the server accepted has closed. */
function allClosed(): Promise<void> {
  return until(
    () => {
      const { opened, closedByClient, closedByServer } = server.connections;
      return opened > 0 && closedByClient + closedByServer === opened;
    },
    'every connection to close',
    [[server.activity, 'change']],
    () => server.connections,
  );
}

describe('idle keep-alive sockets', () => {
  it('are closed by the client before the server would close them, and the next upload opens a fresh one', async () => {
    for (let round = 1; round <= 2; round++) {
      const name = uniqueName(`idle-${round}`);
      const size = K256 + round;
      await pipeline([contentAt(0, size)], createGcsWriteStream(streamOptions(server, name, { retry: { maxAttempts: 1 } })));
      expect(storedDigest(server, name)).toBe(expectedDigest(size));
      await allClosed();
      expect(server.connections.closedByServer).toBe(0);
      expect(server.connections.closedByClient).toBe(server.connections.opened);
    }
    expect(server.connections.opened).toBeGreaterThanOrEqual(2);
  });
});

describe('the local server', () => {
  it('announces its idle timeout, as the client reads it', async () => {
    const response = await fetch(`${server.url}/storage/v1/b/${BUCKET}`);
    await response.arrayBuffer();
    expect(response.headers.get('keep-alive')).toBe('timeout=4');
  });
});
