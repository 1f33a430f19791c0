/**
 * The bytes of a window block as runs of buffers: a block holds its writer's bytes either copied into its pool
 * buffer or, with `retainWrites`, as views of the writer's own buffers, in object order.
 */

/** `buf[from, to)`: some of a block's bytes, in a view of its pool buffer or of a writer's buffer. */
export interface BlockPart {
  readonly buf: Buffer;
  readonly from: number;
  to: number;
}

/** The bytes `[from, to)` of a block made of `parts` (offsets within the block), as views, in order. */
export function* viewsOf(parts: readonly BlockPart[], from: number, to: number): Generator<Buffer> {
  let at = 0;
  for (const part of parts) {
    const length = part.to - part.from;
    const start = Math.max(from, at);
    const end = Math.min(to, at + length);
    if (start < end) {
      const a = part.from + start - at;
      const b = part.from + end - at;
      yield a === 0 && b === part.buf.length ? part.buf : part.buf.subarray(a, b);
    }
    at += length;
    if (at >= to) return;
  }
}
