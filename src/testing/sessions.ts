/**
 * Resumable upload sessions of the local GCS server: their state, the bytes they have committed and the running
 * checksums of those bytes.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import type { FaultKind } from './faults.js';
import type { LocalObject, ObjectContent, ObjectMetadata, Preconditions } from './object-store.js';

/** Size unit of resumable uploads: every chunk but the last must be a multiple of it. */
export const CHUNK_ALIGNMENT = 256 * 1024;

/**
 * Where a session stands.
 * - `active`: accepting bytes.
 * - `finalized`: the object was created; every later `PUT` answers 200 with its resource.
 * - `failed`: finalization was refused (precondition or checksum); every later request gets the same error.
 * - `cancelled`: the client deleted it (499); later requests get 410.
 * - `expired`: killed by an `expire` fault; later requests get 404 or 410.
 */
export type SessionState = 'active' | 'finalized' | 'failed' | 'cancelled' | 'expired';

/** A read-only view of a session, for assertions in tests. */
export interface SessionInfo {
  /** 0-based, in the order sessions were opened. */
  index: number;
  bucket: string;
  name: string;
  state: SessionState;
  /** Bytes persisted so far. */
  bytesCommitted: number;
  /** The size the client announced when opening it (`X-Upload-Content-Length`), if it did. */
  declaredSize?: number;
}

/** What a session is opened with. */
export interface SessionSpec {
  bucket: string;
  name: string;
  meta: ObjectMetadata;
  preconditions: Preconditions;
  /** `X-Upload-Content-Length`, if the client announced it. */
  declaredSize?: number;
}

/** One resumable upload session. */
export class UploadSession {
  /** The `upload_id` (a bearer capability: never logged). */
  readonly id: string;
  readonly index: number;
  readonly spec: SessionSpec;
  /** Total size announced by a `Content-Range` (or at open), once known. */
  total: number | undefined;
  #state: SessionState = 'active';
  #object: LocalObject | undefined;
  #failure: { status: number; message: string } | undefined;
  #deadStatus = 410;
  #committed = 0;
  #parts: Buffer[] = [];
  #crc = 0;
  #md5: Hash | undefined;
  readonly #discard: boolean;
  readonly #seen = new Map<FaultKind, number>();

  /** Opens a session; `discard` keeps only size and checksums, `computeMd5` maintains an MD5 as well. */
  constructor(index: number, spec: SessionSpec, discard: boolean, computeMd5: boolean) {
    this.id = randomBytes(24).toString('base64url');
    this.index = index;
    this.spec = spec;
    this.total = spec.declaredSize;
    this.#discard = discard;
    this.#md5 = computeMd5 ? createHash('md5') : undefined;
  }

  /** Current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** Bytes persisted so far. */
  get committed(): number {
    return this.#committed;
  }

  /** The object, once finalized. */
  get object(): LocalObject | undefined {
    return this.#object;
  }

  /** Why finalization was refused, once failed. */
  get failure(): { status: number; message: string } | undefined {
    return this.#failure;
  }

  /** The status every request gets once the session is cancelled or expired. */
  get deadStatus(): number {
    return this.#deadStatus;
  }

  /**
   * Counts a request of the given kinds and returns, for each, its 0-based index among this session's requests of
   * that kind.
   */
  count(kinds: readonly FaultKind[]): Partial<Record<FaultKind, number>> {
    const nth: Partial<Record<FaultKind, number>> = {};
    for (const kind of kinds) {
      const seen = this.#seen.get(kind) ?? 0;
      nth[kind] = seen;
      this.#seen.set(kind, seen + 1);
    }
    return nth;
  }

  /** Persists bytes `[from, to)` of a request body that was received as `pieces`. */
  append(pieces: readonly Buffer[], from: number, to: number): void {
    let position = 0;
    for (const piece of pieces) {
      const end = position + piece.length;
      if (end > from && position < to) {
        const view = piece.subarray(Math.max(0, from - position), Math.min(piece.length, to - position));
        this.#crc = crc32c(view, this.#crc);
        this.#md5?.update(view);
        if (!this.#discard) this.#parts.push(view);
        this.#committed += view.length;
      }
      position = end;
      if (position >= to) break;
    }
  }

  /** CRC32C of the bytes persisted so far. */
  get crc32c(): number {
    return this.#crc;
  }

  /** Ends the byte stream and returns its content; call once, right before the object is created. */
  takeContent(): ObjectContent {
    const content: ObjectContent = {
      parts: this.#parts,
      size: this.#committed,
      crc32c: this.#crc,
      md5: this.#md5?.digest(),
      discarded: this.#discard,
    };
    this.#md5 = undefined;
    this.#parts = [];
    return content;
  }

  /** Marks the session finalized with its object. */
  finalize(object: LocalObject): void {
    this.#state = 'finalized';
    this.#object = object;
  }

  /** Marks the session failed: every later request gets `status` and `message`. Drops the bytes. */
  fail(status: number, message: string): void {
    this.#state = 'failed';
    this.#failure = { status, message };
    this.#parts = [];
  }

  /** Marks the session cancelled (later requests: 410). Returns false if it was not active. Drops the bytes. */
  cancel(): boolean {
    if (this.#state !== 'active') return false;
    this.#state = 'cancelled';
    this.#deadStatus = 410;
    this.#parts = [];
    return true;
  }

  /** Kills the session: this and every later request gets `status`. Drops the bytes. */
  expire(status: number): void {
    this.#state = 'expired';
    this.#deadStatus = status;
    this.#parts = [];
  }

  /** A read-only snapshot. */
  info(): SessionInfo {
    return {
      index: this.index,
      bucket: this.spec.bucket,
      name: this.spec.name,
      state: this.#state,
      bytesCommitted: this.#committed,
      ...(this.spec.declaredSize === undefined ? {} : { declaredSize: this.spec.declaredSize }),
    };
  }
}
