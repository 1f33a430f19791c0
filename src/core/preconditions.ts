/** GCS's write preconditions, as options (shared by the options and the `@google-cloud/storage` interop). */

/** Preconditions checked by GCS; a failure is a `PreconditionFailedError` (412), never retried. */
export interface Preconditions {
  /** Only write if the live generation is this one; `0` means "only if no object exists". */
  ifGenerationMatch?: number | string;
  ifGenerationNotMatch?: number | string;
  ifMetagenerationMatch?: number | string;
  ifMetagenerationNotMatch?: number | string;
}
