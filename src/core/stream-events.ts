/**
 * The events every Node `Writable` emits, with their listeners' types: the streams' typed `on`/`once`/`off`/...
 * accept these and their own documented events, and nothing else, so that a misspelled event name does not compile.
 */
import type { Readable } from 'node:stream';

/** The events of a Node `stream.Writable` (and of its `EventEmitter`), by name. */
export interface WritableEvents {
  /** The stream and its resources are closed; emitted last. */
  close: () => void;
  /** `write()` returned false earlier and the stream can take more now. */
  drain: () => void;
  /**
   * The stream failed. Errors of this library are `GcsUploadError`s (switch on `code`); after `finish`, a
   * `destroy(error)` passes your own error on as it is.
   */
  error: (error: Error) => void;
  /** Every byte written is in the object (this library emits it only once the object is verified). */
  finish: () => void;
  /** A readable was piped into the stream. */
  pipe: (source: Readable) => void;
  /** A readable was unpiped from the stream. */
  unpipe: (source: Readable) => void;
  /** `EventEmitter`: a listener is about to be added. */
  newListener: (event: string | symbol, listener: (...args: never[]) => void) => void;
  /** `EventEmitter`: a listener was removed. */
  removeListener: (event: string | symbol, listener: (...args: never[]) => void) => void;
}
