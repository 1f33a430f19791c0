/**
 * Interop with `@google-cloud/storage`: a `File` (or a `Storage` plus bucket and name) supplies the bucket, the
 * object name, the endpoint, the auth client, `userProject`, `kmsKeyName` and the file's instance preconditions.
 * Only the shape is read (no import of the package), so any version that has these fields works; the tests use 7.x
 * and 8.x.
 */
import type { AuthorizedClient } from './auth.js';
import { InvalidArgumentError } from './errors.js';
import type { Preconditions } from './preconditions.js';

/** The fields of a `@google-cloud/storage` `Storage` this library reads. */
export interface StorageLike {
  apiEndpoint: string;
  authClient?: unknown;
  /** True when the endpoint is not Google's (an emulator, or STORAGE_EMULATOR_HOST). */
  customEndpoint?: boolean;
  /** With a custom endpoint, whether `@google-cloud/storage` still authenticates. */
  useAuthWithCustomEndpoint?: boolean;
}

/** The fields of a `@google-cloud/storage` `File` this library reads. */
export interface StorageFileLike {
  name: string;
  bucket: { name: string; userProject?: string };
  storage: StorageLike;
  userProject?: string;
  kmsKeyName?: string;
  instancePreconditionOpts?: Preconditions;
}

function isAuthorizedClient(value: unknown): value is AuthorizedClient {
  return typeof value === 'object' && value !== null && typeof (value as { request?: unknown }).request === 'function';
}

/** The stream options a `Storage` or `File` supplies (a subset of `GcsWriteStreamOptions`). */
export interface StorageOptions extends Preconditions {
  bucket?: string;
  name?: string;
  apiEndpoint?: string;
  authClient?: AuthorizedClient;
  userProject?: string;
  kmsKeyName?: string;
}

/** Options derived from a `Storage`; the emulator case keeps the default (unauthenticated) client. */
export function optionsFromStorage(storage: StorageLike): StorageOptions {
  if (typeof storage !== 'object' || storage === null || typeof storage.apiEndpoint !== 'string') {
    throw new InvalidArgumentError('storage must be a @google-cloud/storage Storage instance (it has no apiEndpoint)');
  }
  const options: StorageOptions = { apiEndpoint: storage.apiEndpoint };
  const authenticates = !storage.customEndpoint || storage.useAuthWithCustomEndpoint === true;
  if (authenticates && isAuthorizedClient(storage.authClient)) {
    // google-auth-library clients of any major version take gaxios-style options and return status/headers/data.
    options.authClient = storage.authClient;
  }
  return options;
}

/** Options derived from a `File`: explicit options given alongside it win. */
export function optionsFromFile(file: StorageFileLike): StorageOptions {
  if (typeof file !== 'object' || file === null || typeof file.name !== 'string' || typeof file.bucket?.name !== 'string') {
    throw new InvalidArgumentError('file must be a @google-cloud/storage File instance (it has no name or bucket)');
  }
  // Private in File's typings, so read structurally.
  if ((file as { encryptionKey?: unknown }).encryptionKey !== undefined) {
    throw new InvalidArgumentError('customer-supplied encryption keys (File#setEncryptionKey) are not supported');
  }
  const options: StorageOptions = {
    ...optionsFromStorage(file.storage),
    bucket: file.bucket.name,
    name: file.name,
  };
  const userProject = file.userProject ?? file.bucket.userProject;
  if (userProject !== undefined) options.userProject = userProject;
  if (file.kmsKeyName !== undefined) options.kmsKeyName = file.kmsKeyName;
  for (const [key, value] of Object.entries(file.instancePreconditionOpts ?? {})) {
    if (value !== undefined && key in PRECONDITION_KEYS) options[key as keyof Preconditions] = value as number | string;
  }
  return options;
}

const PRECONDITION_KEYS: Record<keyof Preconditions, true> = {
  ifGenerationMatch: true,
  ifGenerationNotMatch: true,
  ifMetagenerationMatch: true,
  ifMetagenerationNotMatch: true,
};
