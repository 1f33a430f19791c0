/**
 * Transpiles the library and the benchmark to plain JavaScript in a temporary directory, so that each run's process
 * is plain `node child.js`, as a user's would be: no TypeScript loader in it.
 *
 * Why: under `node --import tsx` every process carries the loader's thread (about 33 MiB of RSS) and the compiled
 * sources of whatever it imports (about 9 MiB more for this library's `src/` than for its built `dist/`). That is an
 * artifact of the harness, not a cost of the contender, and it is not even the same for every contender.
 *
 * Types are erased file by file (`transpileModule`, no type check: `npx tsc --noEmit` does that); import specifiers
 * already end in `.js`, so the tree runs as is. Bare imports resolve through a symlink to the package's
 * `node_modules`. The library's entry point is then replaced by a bundle of it, as `dist/index.js` is built.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { buildSync } from 'esbuild';
import ts from 'typescript';

/** A transpiled copy of `src/` and `bench/`; `remove()` it when done. */
export interface BuiltTree {
  dir: string;
  /** Absolute path of `bench/<file>.js` in the tree. */
  readonly benchFile: (file: string) => string;
  readonly remove: () => void;
}

function tsFilesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFilesUnder(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  isolatedModules: true,
  useDefineForClassFields: true,
  sourceMap: false,
};

/** Transpiles `<root>/src` and `<root>/bench` into a fresh temporary directory. */
export function buildTree(root: string): BuiltTree {
  const dir = mkdtempSync(join(os.tmpdir(), 'gcs-bench-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ private: true, type: 'module' })}\n`);
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    for (const file of [...tsFilesUnder(join(root, 'src')), ...tsFilesUnder(join(root, 'bench'))]) {
      const { outputText, diagnostics } = ts.transpileModule(readFileSync(file, 'utf8'), {
        compilerOptions: COMPILER_OPTIONS,
        fileName: file,
        reportDiagnostics: true,
      });
      const errors = (diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
      if (errors.length > 0) {
        throw new Error(`cannot transpile ${relative(root, file)}: ${ts.flattenDiagnosticMessageText(errors[0]?.messageText ?? '', '\n')}`);
      }
      const target = join(dir, relative(root, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, outputText);
    }
    // What users load is dist/index.js: the library bundled into one module (tsup, i.e. esbuild, dependencies left
    // external). Loading it as ~20 separate modules costs about 1.8 MiB more RSS, which is the harness's, not the
    // library's. Same bundling here, over the transpiled entry point that the contender imports.
    buildSync({
      entryPoints: [join(root, 'src', 'index.ts')],
      outfile: join(dir, 'src', 'index.js'),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'error',
      allowOverwrite: true,
    });
  } catch (error) {
    remove();
    throw error;
  }
  return { dir, benchFile: (file) => join(dir, 'bench', file), remove };
}
