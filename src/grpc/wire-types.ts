/**
 * The subset of the storage v2 messages that appendable writes use, as `@grpc/proto-loader` presents them
 * (`keepCase`, int64 as decimal strings, bytes as Buffers, oneofs named, `defaults: false`). Shared by the client and
 * the local server. Every field is optional here because an absent field is what decoding gives, but only those
 * marked "presence" can be absent as such: read the others through `./proto3.ts` (absent is 0, '', false).
 */

/** `google.storage.v2.BidiWriteHandle`. */
export interface WireWriteHandle {
  /** No presence. */
  handle?: Buffer;
}

/** `google.storage.v2.Object`, the fields used here. */
export interface WireObject {
  /** No presence, as every scalar here: an empty object arrives without `size`. */
  bucket?: string;
  name?: string;
  generation?: string;
  metageneration?: string;
  size?: string;
  content_type?: string;
  metadata?: Record<string, string>;
  /** Presence (message). */
  checksums?: WireChecksums;
  /** Presence (message): set once the object is finalized. */
  finalize_time?: { seconds?: string; nanos?: number };
  create_time?: { seconds?: string; nanos?: number };
}

/** `google.storage.v2.ObjectChecksums` (the CRC32C only; appendable objects have no MD5). */
export interface WireChecksums {
  /** Presence (proto3 `optional`): absent means not computed, not 0. */
  crc32c?: number;
}

/** `google.storage.v2.WriteObjectSpec`. */
export interface WireWriteObjectSpec {
  resource?: WireObject;
  /** Presence (proto3 `optional`). */
  if_generation_match?: string;
  /** Presence (proto3 `optional`). */
  appendable?: boolean;
}

/** `google.storage.v2.AppendObjectSpec`. */
export interface WireAppendObjectSpec {
  bucket?: string;
  object?: string;
  generation?: string;
  /** Presence (proto3 `optional`). */
  routing_token?: string;
  /** Presence (proto3 `optional`). */
  write_handle?: WireWriteHandle;
}

/** `google.storage.v2.BidiWriteObjectRequest`. */
export interface WireWriteRequest {
  /** Presence (oneof `first_message`), as `append_object_spec` and `upload_id`. */
  write_object_spec?: WireWriteObjectSpec;
  append_object_spec?: WireAppendObjectSpec;
  upload_id?: string;
  /** Which of the first-message fields is set (proto-loader's `oneofs`). */
  first_message?: 'write_object_spec' | 'append_object_spec' | 'upload_id';
  write_offset?: string;
  /** Presence (oneof `data`); `content` has none, `crc32c` has (proto3 `optional`). */
  checksummed_data?: { content?: Buffer; crc32c?: number };
  /** Presence (message). */
  object_checksums?: WireChecksums;
  state_lookup?: boolean;
  flush?: boolean;
  finish_write?: boolean;
}

/** `google.storage.v2.BidiWriteObjectResponse`. */
export interface WireWriteResponse {
  /** Presence (oneof `write_status`, with `resource`): a persisted size of 0 is on the wire. */
  persisted_size?: string;
  resource?: WireObject;
  write_status?: 'persisted_size' | 'resource';
  /** Presence (message). */
  persisted_data_checksums?: WireChecksums;
  /** Presence (proto3 `optional`). */
  write_handle?: WireWriteHandle;
}

/** The full resource name of a bucket, as storage v2 spells it. */
export function bucketResourceName(bucket: string): string {
  return `projects/_/buckets/${bucket}`;
}

/** The bucket id of `projects/_/buckets/B`, or undefined when `name` is not of that form. */
export function bucketIdOf(name: string | undefined): string | undefined {
  const match = /^projects\/[^/]+\/buckets\/([^/]+)$/.exec(name ?? '');
  return match?.[1];
}

/** gRPC status codes used here (numeric, as on the wire). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** The name of a gRPC status code (`UNAVAILABLE`), or its number as text. */
export function grpcCodeName(code: number): string {
  for (const [name, value] of Object.entries(GrpcCode)) if (value === code) return name;
  return String(code);
}

/** Largest `checksummed_data.content` a message may carry (storage v2's `MAX_WRITE_CHUNK_BYTES`). */
export const MAX_MESSAGE_CONTENT = 2 * 1024 * 1024;
