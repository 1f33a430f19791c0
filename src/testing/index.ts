/**
 * `gcs-resumable-stream/testing`: a GCS-compatible local server with fault injection, for testing code that uploads
 * to Google Cloud Storage.
 */
export { startLocalGcs, LocalGcs } from './server.js';
export type { ConnectionStats, LocalGcsOptions, RequestKind, RequestRecord, RequestStatus } from './server.js';
export { FAULT_KINDS, FaultRules, describeFault, faultMatches, validateFaultRule } from './faults.js';
export type {
  FaultAction,
  FaultContext,
  FaultKind,
  FaultMatch,
  FaultRule,
  HostileVariant,
  ObjectApiFaultKind,
  ObjectReadFaultKind,
  UploadFaultKind,
} from './faults.js';
export { Chaos, DEFAULT_CHAOS_KINDS, DEFAULT_CHAOS_REQUESTS, DEFAULT_CHAOS_STATUSES, createRng, randomInt } from './chaos.js';
export type { ChaosKind, ChaosOptions, ChaosRequest, ChaosRequestKind, ChaosScope, Rng, ScopedChaosOptions } from './chaos.js';
export type { ThrottleStats } from './connection-throttle.js';
export { MAX_COMPONENT_COUNT, MAX_COMPOSE_SOURCES } from './compose.js';
export { crc32cToBase64 } from './object-store.js';
export type { ObjectMetadata, ObjectResource, StoredObject } from './object-store.js';
export type { SessionInfo, SessionState } from './sessions.js';
export { LocalGcsGrpc } from './grpc-server.js';
export type { GrpcStreamRecord } from './grpc-server.js';
export type { GrpcFaultAction, GrpcFaultMatch, GrpcFaultRule, GrpcFaultStatus } from './grpc-faults.js';
export { LocalGcsReads } from './grpc-read.js';
export type { LocalReadOptions, ReadStreamRecord } from './grpc-read.js';
