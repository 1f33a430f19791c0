/**
 * The gRPC stack, loaded on first use: `@grpc/grpc-js`, `@grpc/proto-loader` and the storage v2 protos from
 * `google-proto-files`. Resumable uploads never need any of it (about 10 MiB of code and a 100 ms proto parse), so
 * nothing here runs until an append stream is created or the local gRPC server is started.
 */
import { dirname } from 'node:path';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { nodeRequire } from '../core/node-require.js';

/** What an append stream and the local gRPC server need from the stack. */
export interface StorageGrpc {
  /** The `@grpc/grpc-js` module. */
  readonly grpc: typeof Grpc;
  /** The `google.storage.v2.Storage` client constructor. */
  readonly StorageClient: Grpc.ServiceClientConstructor;
  /** The `google.storage.v2.Storage` service definition, for servers. */
  readonly storageService: Grpc.ServiceDefinition;
}

let loaded: StorageGrpc | undefined;

/** The storage v2 service over grpc-js, loaded (once per process) from the installed dependencies. */
export function loadStorageGrpc(): StorageGrpc {
  if (loaded !== undefined) return loaded;
  const grpc = nodeRequire('@grpc/grpc-js') as typeof Grpc;
  const protoLoader = nodeRequire('@grpc/proto-loader') as typeof ProtoLoader;
  // Resolved from this package's own dependency, so that it works wherever the package is installed.
  const protoRoot = dirname(nodeRequire.resolve('google-proto-files/package.json'));
  const definition = protoLoader.loadSync('google/storage/v2/storage.proto', {
    includeDirs: [protoRoot],
    keepCase: true,
    // int64 as decimal strings: object sizes and generations exceed 2^53 only in theory, but generations do.
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const objects = grpc.loadPackageDefinition(definition) as unknown as {
    google: { storage: { v2: { Storage: Grpc.ServiceClientConstructor } } };
  };
  const StorageClient = objects.google.storage.v2.Storage;
  loaded = { grpc, StorageClient, storageService: StorageClient.service };
  return loaded;
}
