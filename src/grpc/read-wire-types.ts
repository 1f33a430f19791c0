/**
 * The storage v2 messages of `BidiReadObject`, as `@grpc/proto-loader` presents them (`keepCase`, int64 as decimal
 * strings, bytes as Buffers, `defaults: false`: an absent scalar is its default, 0 or false; only `optional` fields
 * carry presence). Shared by the reader and the local server.
 */
import type { WireObject } from './wire-types.js';

/** `google.storage.v2.BidiReadHandle`. */
export interface WireReadHandle {
  handle?: Buffer;
}

/** `google.storage.v2.BidiReadObjectSpec`. */
export interface WireReadObjectSpec {
  bucket?: string;
  object?: string;
  /** Absent or "0": the live generation. */
  generation?: string;
  read_handle?: WireReadHandle;
  routing_token?: string;
}

/** `google.storage.v2.ReadRange`. */
export interface WireReadRange {
  read_offset?: string;
  /** Absent or "0": to the end of the object. */
  read_length?: string;
  read_id?: string;
}

/** `google.storage.v2.BidiReadObjectRequest`. */
export interface WireReadRequest {
  read_object_spec?: WireReadObjectSpec;
  read_ranges?: WireReadRange[];
}

/** `google.storage.v2.ObjectRangeData`. */
export interface WireObjectRangeData {
  checksummed_data?: { content?: Buffer; crc32c?: number };
  read_range?: WireReadRange;
  range_end?: boolean;
}

/** `google.storage.v2.BidiReadObjectResponse`. */
export interface WireReadResponse {
  object_data_ranges?: WireObjectRangeData[];
  metadata?: WireObject;
  read_handle?: WireReadHandle;
}
