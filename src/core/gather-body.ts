/**
 * A request body made of several buffers (the window's blocks), sent without joining them. The library's transport
 * writes the pieces to the socket as they are; any other gaxios transport sees a Readable of them (gaxios passes
 * streams through untouched, where it would serialize an array as JSON).
 */
import { Readable } from 'node:stream';

/** Pieces of one request body, in order. */
export class GatherBody extends Readable {
  /** The pieces (views of the window's blocks: not to be kept past the request). */
  readonly pieces: readonly Uint8Array[];
  /** Bytes in all pieces. */
  readonly length: number;
  #next = 0;

  constructor(pieces: readonly Uint8Array[]) {
    super();
    this.pieces = pieces;
    let length = 0;
    for (const piece of pieces) length += piece.length;
    this.length = length;
  }

  override _read(): void {
    const piece = this.pieces[this.#next];
    this.#next += 1;
    this.push(piece ?? null);
  }
}

/** The body to send for `pieces`: the one buffer itself when there is one, else a GatherBody. */
export function bodyOf(pieces: readonly Uint8Array[]): Uint8Array | GatherBody {
  // A Buffer, not a bare Uint8Array: gaxios 6 would JSON-encode the latter as `{}` (for clients without our transport).
  if (pieces.length === 0) return Buffer.alloc(0);
  return pieces.length === 1 ? pieces[0]! : new GatherBody(pieces);
}
