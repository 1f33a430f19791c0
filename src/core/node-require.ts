/**
 * A synchronous `require` for the ESM and CJS builds alike. Two uses, both about memory:
 *  - CommonJS dependencies (the native CRC32C) are required, not imported: an ESM `import` of a CommonJS module makes
 *    Node instantiate its CommonJS export lexer (a WebAssembly module, about 6 MiB of RSS) in every process that
 *    would otherwise never need it;
 *  - modules only some uploads need (`node:https`) are loaded on first use.
 */
import { createRequire } from 'node:module';

export const nodeRequire = createRequire(import.meta.url);
