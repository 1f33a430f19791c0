/**
 * Once per `vitest run`: bundles the CLI (`src/cli.ts`, dependencies left as imports) into `.test-build/cli.mjs`,
 * which the CLI tests run with plain `node` (test/child.ts). Through `node --import tsx` every child would compile
 * and hook the library's modules again: the suite starts some hundred CLI processes, and on two cores that cost a
 * minute of CPU per run. The bundle is one level below the root, as `src/cli.ts` is, so that its
 * `../package.json` is the package's.
 */
import { build } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI_BUNDLE = join(ROOT, '.test-build', 'cli.mjs');

export async function setup(): Promise<void> {
  await build({
    entryPoints: [join(ROOT, 'src', 'cli.ts')],
    outfile: CLI_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}
