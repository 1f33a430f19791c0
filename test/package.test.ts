/**
 * The package as users get it: `npm pack` (which builds through `prepack`), installed into a fresh project, then
 * used from CommonJS, ESM, TypeScript (node16, bundler and node10 resolution) and through its `gcs-stream` bin.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Testing from '../src/testing/index.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TMP = mkdtempSync(join(tmpdir(), 'gcs-stream-package-'));
const PROJECT = join(TMP, 'consumer');

/** npm's lifecycle variables from `npm test` would point the nested npm at this repository; keep only config. */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(cache|registry|userconfig|globalconfig)$/i;
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.test(key)));
}

async function sh(file: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(file, args, { cwd, env: npmEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const CJS_CHECK = `
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const lib = require('gcs-resumable-stream');
const { startLocalGcs } = require('gcs-resumable-stream/testing');
(async () => {
  assert.equal(typeof lib.createGcsWriteStream, 'function');
  assert.equal(new lib.InvalidArgumentError('x').code, 'ERR_GCS_UPLOAD_INVALID_ARGUMENT');
  const server = await startLocalGcs();
  const data = Buffer.alloc(300000, 7);
  await pipeline(Readable.from([data]), lib.createGcsWriteStream({ bucket: 'pkg-bucket', name: 'cjs', apiEndpoint: server.url, chunkSize: 262144 }));
  assert.ok(server.getObject('pkg-bucket', 'cjs').data.equals(data));
  await server.close();
  // The gRPC stack costs nothing until an append stream needs it; then its service comes from the descriptor the
  // package ships (no proto files).
  const grpcLoaded = () => Object.keys(require.cache).some((file) => /[\\/]@grpc[\\/]/.test(file));
  assert.equal(grpcLoaded(), false, 'a resumable upload loaded the gRPC stack');
  const zonal = await startLocalGcs({ grpc: true });
  await pipeline(Readable.from([data]), lib.createGcsAppendStream({ bucket: 'pkg-bucket', name: 'live', grpcEndpoint: zonal.grpc.address }));
  assert.ok(zonal.getObject('pkg-bucket', 'live').data.equals(data));
  // An empty appendable object: its resource comes without size on the wire (the local server omits defaults).
  await pipeline(Readable.from([]), lib.createGcsAppendStream({ bucket: 'pkg-bucket', name: 'empty', grpcEndpoint: zonal.grpc.address }));
  assert.equal(zonal.getObject('pkg-bucket', 'empty').data.length, 0);
  assert.equal(grpcLoaded(), true);
  assert.equal(Object.keys(require.cache).some((file) => /\\.proto$|google-proto-files/.test(file)), false);
  await zonal.close();
  console.log('cjs ok');
})().catch((error) => { console.error(error); process.exit(1); });
`;

const ESM_CHECK = `
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGcsAppendStream, createGcsWriteStream, GcsUploadError, DEFAULT_CHUNK_SIZE } from 'gcs-resumable-stream';
import { startLocalGcs } from 'gcs-resumable-stream/testing';
assert.equal(DEFAULT_CHUNK_SIZE, 8 * 1024 * 1024);
const server = await startLocalGcs();
server.inject({ match: { kind: 'chunk', offset: 0 }, action: { type: 'status', status: 503 } });
const data = Buffer.alloc(300000, 9);
const upload = createGcsWriteStream({ bucket: 'pkg-bucket', name: 'esm', apiEndpoint: server.url, chunkSize: 262144, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
await pipeline(Readable.from([data]), upload);
assert.ok(server.getObject('pkg-bucket', 'esm').data.equals(data));
assert.equal(server.faultsInjected, 1);
assert.ok(GcsUploadError.prototype instanceof Error);
await server.close();
const zonal = await startLocalGcs({ grpc: true });
const live = createGcsAppendStream({ bucket: 'pkg-bucket', name: 'esm-live', grpcEndpoint: zonal.grpc.address });
await pipeline(Readable.from([data]), live);
assert.equal(live.object.size, data.length);
assert.ok(zonal.getObject('pkg-bucket', 'esm-live').data.equals(data));
await zonal.close();
console.log('esm ok');
`;

/** Type-checks only if the published types are real: the @ts-expect-error lines fail under `any`. */
const TYPES_ESM = `
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGcsWriteStream, GcsUploadError, type GcsWriteStreamOptions, type ParallelCheckpoint, type UploadCheckpoint } from 'gcs-resumable-stream';
import { startLocalGcs, type LocalGcs } from 'gcs-resumable-stream/testing';

export async function upload(server: LocalGcs, data: Buffer): Promise<string | undefined> {
  const options: GcsWriteStreamOptions = { bucket: 'b', name: 'o', apiEndpoint: server.url, validation: 'both' };
  const stream = createGcsWriteStream(options);
  stream.on('checkpoint', (checkpoint: UploadCheckpoint | ParallelCheckpoint) => void checkpoint.bytesCommitted.toFixed());
  stream.on('progress', ({ bytesCommitted }) => void bytesCommitted.toFixed());
  await pipeline(Readable.from([data]), stream);
  return stream.object?.generation;
}
export function code(error: unknown): string | undefined {
  return error instanceof GcsUploadError ? error.code : undefined;
}
export const started: Promise<LocalGcs> = startLocalGcs();
// @ts-expect-error chunkSize is a number of bytes
createGcsWriteStream({ bucket: 'b', name: 'o', chunkSize: '8MiB' });
// @ts-expect-error validation takes 'crc32c' | 'md5' | 'both' | false
createGcsWriteStream({ bucket: 'b', name: 'o', validation: 'sha1' });
`;

const TYPES_CJS = `
import { createGcsWriteStream, type GcsResumableWritable } from 'gcs-resumable-stream';
import { startLocalGcs } from 'gcs-resumable-stream/testing';
export const make = (url: string): GcsResumableWritable => createGcsWriteStream({ bucket: 'b', name: 'o', apiEndpoint: url });
export const start = startLocalGcs;
// @ts-expect-error bucket must be a string
make(1);
`;

function tsconfig(module: string, moduleResolution: string, files: string[]): string {
  return JSON.stringify({
    compilerOptions: {
      module,
      moduleResolution,
      target: 'ES2022',
      strict: true,
      noEmit: true,
      // This package's declarations are checked too; its dependencies' are theirs to check.
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
    },
    files,
  });
}

// The time limits here are hang guards only: a build, an install and three type checks can take minutes on a
// loaded two-core machine.
beforeAll(async () => {
  const packDir = join(TMP, 'pack');
  mkdirSync(packDir);
  mkdirSync(PROJECT);
  // `npm pack` runs `prepack`, i.e. the tsup build, exactly as `npm publish` would. .ci/run packs once before the
  // suites of every Node version and names its tarball in GCS_STREAM_PACKED_TARBALL: the same build, not four.
  const packed = process.env.GCS_STREAM_PACKED_TARBALL;
  if (packed === undefined || packed === '') await sh('npm', ['pack', '--pack-destination', packDir, '--loglevel=error'], ROOT, 400_000);
  else copyFileSync(packed, join(packDir, basename(packed)));
  const tarball = readdirSync(packDir).find((file) => file.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack produced no tarball');
  writeFileSync(join(PROJECT, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  await sh(
    'npm',
    ['install', join(packDir, tarball), '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'],
    PROJECT,
    400_000,
  );
  writeFileSync(join(PROJECT, 'check.cjs'), CJS_CHECK);
  writeFileSync(join(PROJECT, 'check.mjs'), ESM_CHECK);
  writeFileSync(join(PROJECT, 'types.ts'), TYPES_ESM);
  writeFileSync(join(PROJECT, 'types-cjs.cts'), TYPES_CJS);
  writeFileSync(join(PROJECT, 'tsconfig.node16.json'), tsconfig('node16', 'node16', ['types.ts', 'types-cjs.cts']));
  writeFileSync(join(PROJECT, 'tsconfig.bundler.json'), tsconfig('esnext', 'bundler', ['types.ts']));
  // node10 resolution ignores `exports`: `main`/`types` and `typesVersions` (for /testing) must lead to the types.
  writeFileSync(join(PROJECT, 'types-node10.ts'), TYPES_CJS);
  writeFileSync(join(PROJECT, 'tsconfig.node10.json'), tsconfig('commonjs', 'node10', ['types-node10.ts']));
}, 900_000);

afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/**
 * Every bare specifier `entry` loads (`from`, `import()`, `require()` and the library's `nodeRequire()`), following
 * the package's own relative files.
 */
function packagesLoadedBy(entry: string): Set<string> {
  const loaded = new Set<string>();
  const seen = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|[rR]equire\s*\(\s*)["']([^"']+)["']/g)) {
      if (specifier!.startsWith('.')) pending.push(join(dirname(file), specifier!));
      else loaded.add(specifier!);
    }
  }
  return loaded;
}

describe('the packed package, installed in a fresh project', () => {
  it('works from CommonJS: require() of the main and /testing exports', async () => {
    const { stdout } = await sh(process.execPath, ['check.cjs'], PROJECT);
    expect(stdout.trim()).toBe('cjs ok');
  });

  it('works from ESM: import of the main and /testing exports', async () => {
    const { stdout } = await sh(process.execPath, ['check.mjs'], PROJECT);
    expect(stdout.trim()).toBe('esm ok');
  });

  it('installs no proto files (google-proto-files is a build-time dependency) and ships its LICENSE', () => {
    const installed = readdirSync(join(PROJECT, 'node_modules'));
    expect(installed).toContain('@grpc');
    expect(installed).not.toContain('google-proto-files');
    const pkg = join(PROJECT, 'node_modules', 'gcs-resumable-stream');
    expect(readFileSync(join(pkg, 'LICENSE'), 'utf8')).toContain('Apache License\n                           Version 2.0, January 2004');
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
      license: string;
      dependencies: Record<string, string>;
    };
    expect(manifest.license).toBe('Apache-2.0');
    expect(Object.keys(manifest.dependencies)).not.toContain('google-proto-files');
  });

  it("keeps the CLI's dependencies (commander, cli-progress) out of the library's entry points", () => {
    const dist = join(PROJECT, 'node_modules', 'gcs-resumable-stream', 'dist');
    for (const entry of ['index.js', 'index.cjs', 'testing/index.js', 'testing/index.cjs']) {
      const loaded = [...packagesLoadedBy(join(dist, entry))];
      expect(loaded, entry).toContain('@node-rs/crc32'); // the scan does see the package's dependencies
      expect(
        loaded.filter((name) => /^(commander|cli-progress)(\/|$)/.test(name)),
        entry,
      ).toEqual([]);
    }
    // The bin does need them: that is why they are dependencies.
    expect([...packagesLoadedBy(join(dist, 'cli.js'))]).toEqual(expect.arrayContaining(['commander', 'cli-progress']));
  });

  it('its types check under moduleResolution node16 (ESM and CJS), bundler and node10', async () => {
    await Promise.all([
      sh(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], PROJECT),
      sh(process.execPath, [TSC, '-p', 'tsconfig.bundler.json'], PROJECT),
      sh(process.execPath, [TSC, '-p', 'tsconfig.node10.json'], PROJECT),
    ]);
  });

  it('its gcs-stream bin uploads a file to a server started through the installed /testing export', async () => {
    const testing = createRequire(join(PROJECT, 'package.json'))('gcs-resumable-stream/testing') as typeof Testing;
    const server = await testing.startLocalGcs();
    try {
      const data = randomBytes(700_000);
      writeFileSync(join(PROJECT, 'data.bin'), data);
      const bin = join(PROJECT, 'node_modules', '.bin', 'gcs-stream');
      const { stdout } = await sh(
        bin,
        ['cp', 'data.bin', 'gs://pkg-bucket/bin/data.bin', '--endpoint', server.url, '--chunk-size', '256KiB', '--json'],
        PROJECT,
      );
      expect(JSON.parse(stdout)).toMatchObject({ bucket: 'pkg-bucket', name: 'bin/data.bin', size: data.length, retries: 0 });
      expect(server.getObject('pkg-bucket', 'bin/data.bin')?.data.equals(data)).toBe(true);
      const { stdout: version } = await sh(bin, ['--version'], PROJECT);
      expect(version.trim()).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      await server.close();
    }
  });
});
