/**
 * Checkpoints: the small JSON-serializable state that lets a new process continue an upload after a crash. No
 * state file is written by the library; the `checkpoint` event hands the value to the caller, who stores it where
 * it fits (a file, a database row) and passes it back as `resume`.
 */
import { InvalidArgumentError } from './errors.js';

/** Where an upload stood after a commit. Treat it as a secret: `uploadUri` grants write access to the session. */
export interface UploadCheckpoint {
  version: 1;
  /** The resumable session URI. */
  uploadUri: string;
  bucket: string;
  name: string;
  /** Bytes GCS had confirmed when the checkpoint was taken. */
  bytesCommitted: number;
  /** Raw CRC32C of the first `bytesCommitted` bytes (absent when CRC32C validation was off). */
  crc32c?: number;
}

/** Checks that `value` is a checkpoint this version understands; throws `InvalidArgumentError` otherwise. */
export function validateCheckpoint(value: unknown): UploadCheckpoint {
  const c = value as Partial<UploadCheckpoint> | null;
  if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('resume must be a checkpoint object');
  if (c.version !== 1) throw new InvalidArgumentError(`resume: unsupported checkpoint version ${String(c.version)}`);
  if (typeof c.uploadUri !== 'string' || !/^https?:\/\//.test(c.uploadUri)) {
    throw new InvalidArgumentError('resume: the checkpoint has no valid uploadUri');
  }
  if (typeof c.bucket !== 'string' || typeof c.name !== 'string') {
    throw new InvalidArgumentError('resume: the checkpoint has no bucket or name');
  }
  if (typeof c.bytesCommitted !== 'number' || !Number.isSafeInteger(c.bytesCommitted) || c.bytesCommitted < 0) {
    throw new InvalidArgumentError('resume: the checkpoint has no valid bytesCommitted');
  }
  if (c.crc32c !== undefined && (!Number.isInteger(c.crc32c) || c.crc32c < 0 || c.crc32c > 0xffffffff)) {
    throw new InvalidArgumentError('resume: the checkpoint has an invalid crc32c');
  }
  const checkpoint: UploadCheckpoint = {
    version: 1,
    uploadUri: c.uploadUri,
    bucket: c.bucket,
    name: c.name,
    bytesCommitted: c.bytesCommitted,
  };
  if (c.crc32c !== undefined) checkpoint.crc32c = c.crc32c;
  return Object.freeze(checkpoint);
}
