/**
 * The storage v2 descriptor the package ships (src/grpc/storage-v2-descriptor.ts) is generated from the protos of
 * the `google-proto-files` devDependency: it must be what the generator makes of them today.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DESCRIPTOR_MODULE, storageDescriptorModule } from '../scripts/generate-storage-descriptor.js';
import { loadStorageGrpc } from '../src/grpc/grpc-stack.js';

describe('the shipped storage v2 descriptor', () => {
  it('is up to date with the protos (else run npx tsx scripts/generate-storage-descriptor.ts)', async () => {
    expect(readFileSync(DESCRIPTOR_MODULE, 'utf8')).toBe(await storageDescriptorModule());
  });

  it('defines the Storage service with its streaming methods, and keeps what decides presence', () => {
    const { StorageClient, descriptor } = loadStorageGrpc();
    expect(StorageClient.service.BidiWriteObject).toMatchObject({ requestStream: true, responseStream: true });
    expect(StorageClient.service.BidiReadObject).toMatchObject({ requestStream: true, responseStream: true });
    const v2 = JSON.stringify(descriptor);
    // proto3 `optional` (ObjectChecksums.crc32c) and real oneofs (BidiWriteObjectResponse.write_status) survive.
    expect(v2).toContain('"ObjectChecksums":{"oneofs":{"_crc32c":{"oneof":["crc32c"]}}');
    expect(v2).toContain('"write_status":{"oneof":["persisted_size","resource"]}');
    // Documentation options do not.
    expect(v2).not.toContain('google.api.field_behavior');
  });
});
