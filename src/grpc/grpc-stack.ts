/**
 * The gRPC stack, loaded on first use: `@grpc/grpc-js`, `@grpc/proto-loader` and the storage v2 service from the
 * descriptor this package ships (`./storage-v2-descriptor.ts`, generated from the protos at build time). Resumable
 * uploads never need any of it (about 10 MiB of code), so nothing here runs until an append stream is created or the
 * local gRPC server is started.
 */
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { nodeRequire } from '../core/node-require.js';
import { STORAGE_V2_DESCRIPTOR } from './storage-v2-descriptor.js';

/** A protobufjs JSON descriptor, as `@grpc/proto-loader`'s `fromJSON` takes it. */
export type ProtoDescriptor = Parameters<typeof ProtoLoader.fromJSON>[0];

/** What an append stream and the local gRPC server need from the stack. */
export interface StorageGrpc {
  /** The `@grpc/grpc-js` module. */
  readonly grpc: typeof Grpc;
  /** The `google.storage.v2.Storage` client constructor. */
  readonly StorageClient: Grpc.ServiceClientConstructor;
  /** The `google.storage.v2.Storage` service definition, for servers. */
  readonly storageService: Grpc.ServiceDefinition;
  /** The descriptor the service was loaded from (the local server reads field types from it). */
  readonly descriptor: ProtoDescriptor;
}

let loaded: StorageGrpc | undefined;

/** The storage v2 service over grpc-js, loaded (once per process). */
export function loadStorageGrpc(): StorageGrpc {
  if (loaded !== undefined) return loaded;
  const grpc = nodeRequire('@grpc/grpc-js') as typeof Grpc;
  const protoLoader = nodeRequire('@grpc/proto-loader') as typeof ProtoLoader;
  const descriptor = JSON.parse(STORAGE_V2_DESCRIPTOR) as ProtoDescriptor;
  const definition = protoLoader.fromJSON(descriptor, {
    // The descriptor's field names are the protos' already (it was generated with keepCase).
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
  loaded = { grpc, StorageClient, storageService: StorageClient.service, descriptor };
  return loaded;
}
