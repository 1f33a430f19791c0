import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MemoryPool } from '../src/core/memory-pool.js';
import { DEFAULT_API_ENDPOINT, DEFAULT_BUFFER_CHUNKS, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_UNCOMMITTED_MS } from '../src/core/options.js';
import { DEFAULT_RETRY } from '../src/core/retry.js';

// Issue 22, items 3 and 6: README snippets that failed as written (`pipeline` and `source` undefined, a
// `const exports` that is a SyntaxError in CommonJS), and an options table whose defaults had drifted from the code.
// Every ```ts / ```js block is type-checked here, in one program, against the sources (the package's own names
// map to src/), with only the declarations below assumed: values that stand for the reader's own.

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** What snippets may use without declaring it: the reader's own data and functions, named as the README names them. */
const ASSUMED = `
import type { Readable } from 'node:stream';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { AppendableCheckpoint, GcsWriteStreamOptions, ParallelCheckpoint, UploadCheckpoint } from 'gcs-resumable-stream';
import type { LocalGcs } from 'gcs-resumable-stream/testing';
declare global {
  /** Your bucket and object name. */
  const bucket: string;
  const name: string;
  /** Your data. */
  const source: Readable;
  /** Object metadata you read earlier. */
  const metadata: { generation: string };
  /** A child process whose output is uploaded. */
  const child: ChildProcessWithoutNullStreams;
  /** Your metrics client. */
  const metrics: { gauge(name: string, value: number): void };
  /** Where you keep checkpoints. */
  function saveCheckpoint(checkpoint: UploadCheckpoint | ParallelCheckpoint): void;
  function saveSomewhere(checkpoint: AppendableCheckpoint): void;
  /** Your upload code under test, and its input. */
  function archiveLines(lines: string[], options: Partial<GcsWriteStreamOptions>): Promise<void>;
  const lines: string[];
  /** A local server your test started. */
  const server: LocalGcs;
}
export {};
`;

interface Snippet {
  line: number;
  lang: string;
  code: string;
}

function snippets(markdown: string): Snippet[] {
  const found: Snippet[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(fence)) {
    const lang = match[1]!;
    if (lang !== 'ts' && lang !== 'js') continue;
    found.push({ line: markdown.slice(0, match.index).split('\n').length, lang, code: match[2]! });
  }
  return found;
}

/** Type-checks every snippet as an ES module of its own; returns the diagnostics, each with its README line. */
function typecheck(list: Snippet[]): string[] {
  const files = new Map<string, string>();
  files.set(join(ROOT, '.readme', 'assumed.ts'), ASSUMED);
  list.forEach((snippet, i) => {
    // `export {}` makes a snippet without imports a module too (top-level await, a scope of its own).
    files.set(join(ROOT, '.readme', `snippet-${i}.ts`), `${snippet.code}\nexport {};\n`);
  });
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts', 'lib.es2024.string.d.ts'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    allowJs: true,
    baseUrl: ROOT,
    paths: {
      'gcs-resumable-stream': ['src/index.ts'],
      'gcs-resumable-stream/testing': ['src/testing/index.ts'],
    },
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (file) => files.get(file) ?? readFile(file);
  host.fileExists = (file) => files.has(file) || ts.sys.fileExists(file);
  host.getSourceFile = (file, language, onError) => {
    const text = files.get(file);
    return text === undefined ? getSourceFile(file, language, onError) : ts.createSourceFile(file, text, language, true);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  // Only the snippets are checked (the sources have their own type check): the checker then looks at no more of
  // src/ than the snippets use, which keeps this test fast.
  const diagnostics = [...files.keys()].flatMap((file) => {
    const source = program.getSourceFile(file)!;
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
  });
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const index = d.file === undefined ? -1 : [...files.keys()].indexOf(d.file.fileName) - 1;
    if (d.file === undefined || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const where = index >= 0 ? `README.md:${list[index]!.line + 1 + line}` : d.file.fileName;
    return `${where}: ${text}`;
  });
}

describe('README', () => {
  it('every ts/js snippet type-checks against the sources', () => {
    const list = snippets(README);
    expect(list.length).toBeGreaterThan(10);
    expect(typecheck(list)).toEqual([]);
  });

  it('no snippet declares a name CommonJS reserves (a SyntaxError there)', () => {
    for (const snippet of snippets(README)) {
      expect(snippet.code, `README.md:${snippet.line}`).not.toMatch(
        /\b(?:const|let|var|function|class)\s+(?:exports|require|module|__dirname|__filename)\b/,
      );
    }
  });

  it('has a table of contents that links every section', () => {
    const headings = [...README.matchAll(/^## (.+)$/gm)].map((m) => m[1]!).filter((h) => h !== 'Contents');
    const contents = /^## Contents\n([\s\S]*?)\n## /m.exec(README)?.[1] ?? '';
    for (const heading of headings) {
      const anchor = heading
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-');
      expect(contents, heading).toContain(`](#${anchor})`);
    }
  });

  it("the options table's defaults are the code's", () => {
    const table = new Map<string, string>();
    for (const match of README.matchAll(/^\| `([\w.]+)` \| [^|]+ \| ([^|]+) \|/gm)) table.set(match[1]!, match[2]!.trim());
    const mib = (bytes: number): string => `${bytes / 2 ** 20} MiB`;
    expect({
      chunkSize: table.get('chunkSize'),
      bufferChunks: table.get('bufferChunks'),
      maxUncommittedMs: table.get('maxUncommittedMs'),
      memory: table.get('memory'),
      apiEndpoint: table.get('apiEndpoint'),
      'retry.maxAttempts': table.get('retry.maxAttempts'),
      'retry.initialDelayMs': table.get('retry.initialDelayMs'),
      'retry.multiplier': table.get('retry.multiplier'),
      'retry.maxDelayMs': table.get('retry.maxDelayMs'),
      'retry.stallTimeoutMs': table.get('retry.stallTimeoutMs'),
    }).toEqual({
      chunkSize: mib(DEFAULT_CHUNK_SIZE),
      bufferChunks: String(DEFAULT_BUFFER_CHUNKS),
      maxUncommittedMs: String(DEFAULT_MAX_UNCOMMITTED_MS),
      memory: `\`MemoryPool.default\` (${mib(MemoryPool.DEFAULT_MAX_BYTES)})`,
      apiEndpoint: `\`STORAGE_EMULATOR_HOST\`, else \`${DEFAULT_API_ENDPOINT}\``,
      'retry.maxAttempts': String(DEFAULT_RETRY.maxAttempts),
      'retry.initialDelayMs': String(DEFAULT_RETRY.initialDelayMs),
      'retry.multiplier': String(DEFAULT_RETRY.multiplier),
      'retry.maxDelayMs': String(DEFAULT_RETRY.maxDelayMs),
      'retry.stallTimeoutMs': String(DEFAULT_RETRY.stallTimeoutMs),
    });
    // The cap the bufferChunks row states, and every "N × M MiB" figure of the window in prose.
    const cap = mib(DEFAULT_CHUNK_SIZE * DEFAULT_BUFFER_CHUNKS);
    expect(table.get('bufferChunks') === String(DEFAULT_BUFFER_CHUNKS) && README.includes(`(${cap} by default`)).toBe(true);
    expect(README).not.toMatch(/default 2 × 8 MiB/);
  });
});
