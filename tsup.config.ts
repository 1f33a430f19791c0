import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // The two builds run concurrently: this one must not delete what the CLI build writes.
    clean: ['!cli.js', '!cli.js.map'],
    target: 'node20',
    shims: true,
  },
  {
    // The `gcs-stream` command: ESM only (bin points at dist/cli.js), executable. Its own dependencies (commander,
    // cli-progress) stay imports, which is why they are the package's dependencies; the library entries never load them.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
    sourcemap: true,
    clean: false,
    target: 'node20',
  },
]);
