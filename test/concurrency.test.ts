import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalGcs, type LocalGcs } from '../src/testing/index.js';
import { measurePeakMemory } from './helpers.js';
import { BUCKET, MiB, runConcurrentUploads } from './soak/chaos-upload.js';

const COUNT = 50;
const MAX_SIZE = 6 * MiB;

describe(`${COUNT} simultaneous uploads in one process`, () => {
  let server: LocalGcs;
  beforeAll(async () => {
    // The server keeps sizes and checksums (CRC32C and MD5), not bytes, so that what grows is the clients.
    server = await startLocalGcs({ discardData: true });
  });
  afterAll(async () => {
    await server.close();
  });

  it('all land intact, and peak memory stays within the sum of their bounds', { timeout: 300_000 }, async () => {
    const {
      result: uploads,
      rssGrowth,
      bufferGrowth: growth,
    } = await measurePeakMemory(() => runConcurrentUploads(server, { count: COUNT, seed: 4242, maxSize: MAX_SIZE }));

    expect(uploads.filter((u) => u.error !== undefined).map((u) => `${u.name}: ${String(u.error)}`)).toEqual([]);
    expect(uploads.filter((u) => u.faulted).length).toBeGreaterThanOrEqual(COUNT / 4);
    for (const u of uploads) {
      const object = server.getObject(BUCKET, u.name);
      // With the data discarded, size + CRC32C + MD5 of exactly the bytes written stand for byte identity.
      expect({ name: u.name, size: object?.resource.size, crc32c: object?.resource.crc32c, md5: object?.resource.md5Hash }).toEqual({
        name: u.name,
        size: String(u.size),
        crc32c: u.crc32c,
        md5: u.md5,
      });
    }
    const total = uploads.reduce((sum, u) => sum + u.size, 0);
    const bounds = uploads.reduce((sum, u) => sum + u.bound, 0);
    // The server, in this process, also holds the body of each request in flight (one chunk per upload), and each
    // writer its scratch buffer.
    const serverInFlight = uploads.reduce((sum, u) => sum + u.chunkSize, 0);
    const scratch = uploads.reduce((sum, u) => sum + u.writeSize, 0);
    console.log(
      `concurrency: ${COUNT} uploads, ${(total / MiB).toFixed(0)} MiB in all; sum of bounds ${(bounds / MiB).toFixed(1)} MiB ` +
        `(+ ${(serverInFlight / MiB).toFixed(1)} MiB of server request bodies, ${(scratch / MiB).toFixed(1)} MiB of writers' buffers); peak ArrayBuffer growth ${(growth / MiB).toFixed(1)} MiB, ` +
        `peak RSS growth ${(rssGrowth / MiB).toFixed(1)} MiB`,
    );
    expect(total).toBeGreaterThan(2 * (bounds + serverInFlight));
    // Slack for garbage not yet collected, sockets' and the HTTP parser's buffers.
    expect(growth).toBeLessThan(bounds + serverInFlight + scratch + 32 * MiB);
  });
});

describe('no leaked sockets, timers or listeners', () => {
  it(`a process that runs ${COUNT} uploads (some faulted) and closes its server exits on its own`, { timeout: 300_000 }, async () => {
    const module = (path: string): string => JSON.stringify(join(import.meta.dirname, path));
    const script = `
      import { createHash } from 'node:crypto';
      import { startLocalGcs } from ${module('../src/testing/index.ts')};
      import { BUCKET, runConcurrentUploads } from ${module('soak/chaos-upload.ts')};
      const server = await startLocalGcs();
      const uploads = await runConcurrentUploads(server, { count: ${COUNT}, seed: 777, maxSize: 3 * 1024 * 1024 });
      let identical = 0;
      for (const u of uploads) {
        const object = server.getObject(BUCKET, u.name);
        if (u.error === undefined && object !== undefined && createHash('sha256').update(object.data).digest('hex') === u.sha256) identical += 1;
        else console.log('mismatch ' + u.name + ' ' + String(u.error));
      }
      await server.close();
      console.log('identical ' + identical);
      // No process.exit(): the process must end because nothing is left to keep it alive.
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    // Once the uploads are done and the server closed (the child says so), it has 5 s to go away on its own.
    const watchdog = (): void => {
      if (!/^identical /m.test(stdout) || killed) return;
      child.stdout.off('data', watchdog);
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, 30_000).unref();
    };
    child.stdout.on('data', watchdog);
    const deadline = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, 280_000);
    const { code, signal } = await exited;
    clearTimeout(deadline);
    expect(stdout, stderr).toMatch(new RegExp(`^identical ${COUNT}$`, 'm'));
    expect({ killed, signal, code }).toEqual({ killed: false, signal: null, code: 0 });
    expect(stderr).toBe('');
  });
});
