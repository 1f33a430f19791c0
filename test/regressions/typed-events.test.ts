import type { Readable } from 'node:stream';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  createGcsAppendStream,
  createGcsWriteStream,
  GcsUploadError,
  InvalidArgumentError,
  type GcsAppendableWritable,
  type GcsErrorCode,
  type GcsResumableWritable,
  type ParallelCheckpoint,
  type RetryEvent,
  type UploadCheckpoint,
} from '../../src/index.js';

// Issue 22, item 6: event names and listener signatures were not checked (a misspelled event compiled through the
// `string | symbol` fallback overloads), and `code` was a plain string. This file is checked by `npm run typecheck`:
// each `@ts-expect-error` below fails the typecheck when the line it marks compiles.

/** Registers listeners on a stream without running anything (the checks are the compiler's). */
function resumableListeners(stream: GcsResumableWritable): void {
  stream.on('checkpoint', (checkpoint) => expectTypeOf(checkpoint).toEqualTypeOf<UploadCheckpoint | ParallelCheckpoint>());
  stream.once('retry', (event) => expectTypeOf(event).toEqualTypeOf<RetryEvent>());
  stream.on('session', (uri) => expectTypeOf(uri).toEqualTypeOf<string>());
  stream.on('error', (error) => expectTypeOf(error).toEqualTypeOf<Error>());
  stream.on('pipe', (source) => expectTypeOf(source).toEqualTypeOf<Readable>());
  stream
    .on('finish', () => undefined)
    .on('close', () => undefined)
    .on('drain', () => undefined);
  stream.prependListener('progress', (progress) => expectTypeOf(progress.bytesCommitted).toEqualTypeOf<number>());
  // @ts-expect-error: a misspelled event name
  stream.on('checkpiont', () => undefined);
  // @ts-expect-error: a misspelled event name, through once
  stream.once('finsh', () => undefined);
  // @ts-expect-error: a misspelled event name, through addListener
  stream.addListener('progres', () => undefined);
  // @ts-expect-error: the wrong listener type (checkpoint gives an UploadCheckpoint, not a string)
  stream.on('checkpoint', (checkpoint: string) => checkpoint.length);
  // @ts-expect-error: an event of the other stream
  stream.off('generation', () => undefined);
}

function appendListeners(stream: GcsAppendableWritable): void {
  stream.on('generation', (generation) => expectTypeOf(generation).toEqualTypeOf<string>());
  stream.on('close', () => undefined).on('unpipe', (source) => expectTypeOf(source).toEqualTypeOf<Readable>());
  // @ts-expect-error: a misspelled event name
  stream.on('generaton', () => undefined);
  // @ts-expect-error: an event of the other stream
  stream.once('session', () => undefined);
  // @ts-expect-error: the wrong listener type
  stream.prependOnceListener('progress', (progress: number) => progress);
}

function describeFailure(error: GcsUploadError): string {
  // A switch on `code` is checked against the union: a misspelled case does not compile.
  switch (error.code) {
    case 'ERR_GCS_UPLOAD_NETWORK':
      return 'network';
    // @ts-expect-error: not a code of this library
    case 'ERR_GCS_UPLOAD_NETWROK':
      return 'typo';
    default:
      return error.code;
  }
}

describe('typed events and error codes', () => {
  it('listener methods take the documented events only, with their listener types (checked by tsc)', () => {
    expectTypeOf(resumableListeners).toBeFunction();
    expectTypeOf(appendListeners).toBeFunction();
    expectTypeOf<GcsResumableWritable['on']>().returns.toEqualTypeOf<GcsResumableWritable>();
    expectTypeOf(createGcsWriteStream).returns.toEqualTypeOf<GcsResumableWritable>();
    expectTypeOf(createGcsAppendStream).returns.toEqualTypeOf<GcsAppendableWritable>();
  });

  it('code is the GcsErrorCode union', () => {
    expectTypeOf<GcsUploadError['code']>().toEqualTypeOf<GcsErrorCode>();
    expectTypeOf<'ERR_GCS_UPLOAD_ABORTED'>().toMatchTypeOf<GcsErrorCode>();
    expectTypeOf<string>().not.toMatchTypeOf<GcsErrorCode>();
    const error = new InvalidArgumentError('x');
    expect(describeFailure(error)).toBe('ERR_GCS_UPLOAD_INVALID_ARGUMENT');
  });
});
