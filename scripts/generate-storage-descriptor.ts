/**
 * Writes src/grpc/storage-v2-descriptor.ts: the storage v2 `Storage` service and every message and enum it
 * reaches (plus the `*Error` messages GCS puts in status details), as a protobufjs JSON descriptor, from the protos
 * of the `google-proto-files` devDependency. The package ships that descriptor instead of depending on
 * `google-proto-files` (88 MB installed) for a few files. Options, comments and reserved ranges are dropped: gRPC
 * needs names, numbers, types and oneofs (proto3 `optional` stays marked, it decides presence).
 *
 * `npm run build` runs it; test/storage-descriptor.test.ts fails when the committed file differs from what it
 * generates. Run it by hand after updating google-proto-files: `npx tsx scripts/generate-storage-descriptor.ts`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the generated module lives. */
export const DESCRIPTOR_MODULE = join(ROOT, 'src', 'grpc', 'storage-v2-descriptor.ts');

const SERVICE = 'google.storage.v2.Storage';
/** Field options that change the wire format or presence; every other option is documentation for code generators. */
const WIRE_OPTIONS = ['proto3_optional', 'packed'];

type Json = Record<string, unknown>;

/** The types and enums `SERVICE` reaches, and the status-detail errors of its package. */
function reachable(root: protobuf.Root): Set<protobuf.ReflectionObject> {
  const keep = new Set<protobuf.ReflectionObject>();
  const visit = (object: protobuf.ReflectionObject | null): void => {
    if (object === null || keep.has(object)) return;
    keep.add(object);
    if (object instanceof protobuf.Type) for (const field of object.fieldsArray) visit(field.resolve().resolvedType);
  };
  const service = root.lookupService(SERVICE);
  keep.add(service);
  for (const method of service.methodsArray) {
    method.resolve();
    visit(method.resolvedRequestType);
    visit(method.resolvedResponseType);
  }
  const pkg = service.parent!;
  for (const nested of pkg.nestedArray) if (nested instanceof protobuf.Type && nested.name.endsWith('Error')) visit(nested);
  return keep;
}

function fieldJson(field: protobuf.Field): Json {
  const json = field.toJSON();
  const options = Object.fromEntries(Object.entries(field.options ?? {}).filter(([key]) => WIRE_OPTIONS.includes(key)));
  const out: Json = {};
  if (json.rule !== undefined) out.rule = json.rule;
  if (field instanceof protobuf.MapField) out.keyType = field.keyType;
  out.type = field.type;
  out.id = field.id;
  if (Object.keys(options).length > 0) out.options = options;
  return out;
}

/** The JSON of `namespace`'s kept members (undefined when none is kept). */
function namespaceJson(namespace: protobuf.Namespace, keep: Set<protobuf.ReflectionObject>): Json | undefined {
  const nested: Json = {};
  for (const child of namespace.nestedArray) {
    const inner = child instanceof protobuf.Namespace ? namespaceJson(child, keep) : undefined;
    let json: Json | undefined;
    if (child instanceof protobuf.Service) {
      if (keep.has(child)) {
        json = {
          methods: Object.fromEntries(
            child.methodsArray.map((m) => [
              m.name,
              {
                requestType: m.requestType,
                ...(m.requestStream === true ? { requestStream: true } : {}),
                responseType: m.responseType,
                ...(m.responseStream === true ? { responseStream: true } : {}),
              },
            ]),
          ),
        };
      }
    } else if (child instanceof protobuf.Type && keep.has(child)) {
      json = {};
      if (child.oneofsArray.length > 0) json.oneofs = Object.fromEntries(child.oneofsArray.map((o) => [o.name, { oneof: o.oneof }]));
      json.fields = Object.fromEntries(child.fieldsArray.map((f) => [f.name, fieldJson(f)]));
      if (inner !== undefined) json.nested = inner;
    } else if (child instanceof protobuf.Enum && keep.has(child)) {
      json = { values: child.values };
    } else if (inner !== undefined) {
      // A namespace (or a type nobody uses) that holds kept members.
      json = { nested: inner };
    }
    if (json !== undefined) nested[child.name] = json;
  }
  return Object.keys(nested).length > 0 ? nested : undefined;
}

/** The descriptor of `SERVICE`, as JSON text. */
export function storageDescriptorJson(): string {
  const protoDir = dirname(require.resolve('google-proto-files/package.json'));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(protoDir, target));
  // keepCase as at run time: the messages' field names are the protos' (snake_case).
  root.loadSync('google/storage/v2/storage.proto', { keepCase: true });
  root.resolveAll();
  return JSON.stringify({ nested: namespaceJson(root, reachable(root)) });
}

/** The source of the generated module. */
export async function storageDescriptorModule(): Promise<string> {
  const { version } = JSON.parse(readFileSync(require.resolve('google-proto-files/package.json'), 'utf8')) as { version: string };
  const json = storageDescriptorJson();
  const source = [
    `// Generated by scripts/generate-storage-descriptor.ts from google-proto-files ${version} (npm run build): do not edit.`,
    '',
    '/**',
    ` * The storage v2 \`${SERVICE}\` service and the messages it uses, as a protobufjs JSON descriptor (for`,
    " * `@grpc/proto-loader`'s `fromJSON`), without options or comments. Text, parsed on first use: a process that never",
    ' * opens a gRPC stream never builds it.',
    ' */',
    `export const STORAGE_V2_DESCRIPTOR: string = '${json.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}';`,
    '',
  ].join('\n');
  const config = await prettier.resolveConfig(DESCRIPTOR_MODULE);
  return prettier.format(source, { ...config, filepath: DESCRIPTOR_MODULE });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const source = await storageDescriptorModule();
  // Written only when it changed: `npm pack` runs this while tests may be reading the file.
  if (!existsSync(DESCRIPTOR_MODULE) || readFileSync(DESCRIPTOR_MODULE, 'utf8') !== source) {
    writeFileSync(DESCRIPTOR_MODULE, source);
    console.log(`wrote ${DESCRIPTOR_MODULE} (${source.length} bytes)`);
  }
}
