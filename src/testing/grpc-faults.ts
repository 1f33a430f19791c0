/**
 * Scripted faults of the local server's gRPC side (`BidiWriteObject` and, with `match.method: 'read'`,
 * `BidiReadObject` streams), the counterpart of the JSON side's rules: break a stream once it carries an object past
 * some offset, answer a status, stall, redirect, or (reads) corrupt a message's bytes.
 */

/** gRPC status names a `status` fault may answer with. */
export type GrpcFaultStatus =
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL'
  | 'RESOURCE_EXHAUSTED'
  | 'ABORTED'
  | 'FAILED_PRECONDITION'
  | 'INVALID_ARGUMENT'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED';

/** What a gRPC fault does. */
export type GrpcFaultAction =
  /**
   * The stream breaks (UNAVAILABLE, as a reset connection surfaces in grpc-js) after the server persisted the bytes
   * it had received up to the rule's `offset` (all of them without one): a writer must reconcile with what the
   * server holds, which is more than it last heard.
   */
  | { readonly type: 'break' }
  /**
   * The stream fails with `status` before the message is processed (on a first message: before the object is
   * created or taken over); unpersisted bytes of the stream are lost.
   */
  | { readonly type: 'status'; readonly status: GrpcFaultStatus }
  /**
   * The server persists what it had received up to the rule's `offset` (as `break` does; on a first message, the
   * object is created or taken over), then stops reading and never answers again: the stream hangs until the
   * client cancels it. Bytes received but not persisted are lost.
   */
  | { readonly type: 'stall' }
  /**
   * The stream fails with ABORTED and a `BidiWriteObjectRedirectedError` in its status details (routing token,
   * write handle, generation); the object's next stream must carry the routing token.
   */
  | { readonly type: 'redirect'; readonly routingToken?: string }
  /**
   * Reads only: the matched data message goes out with one byte of its content flipped and its original
   * `checksummed_data.crc32c` (corruption in transit): a reader must notice and ask for those bytes again.
   */
  | { readonly type: 'corrupt' };

/** Which message a gRPC fault fires on. */
export interface GrpcFaultMatch {
  /**
   * The kind of stream: `write` (`BidiWriteObject`, the default) or `read` (`BidiReadObject`). On a read stream, `break`
   * and `stall` fire once the server has sent the object's bytes up to `offset` (a break then fails the stream with
   * UNAVAILABLE), `status` fails it before the matched message goes out, `redirect` fails it with ABORTED and a
   * `BidiReadObjectRedirectedError` (routing token, read handle).
   */
  method?: 'write' | 'read';
  bucket?: string;
  object?: string;
  /** The n-th stream of `method` the server received (1-based). */
  stream?: number;
  /**
   * Fires on the first data message that carries the object past this offset (its bytes end beyond it); without
   * it, the rule fires on the first message of a matching stream.
   */
  offset?: number;
}

/** A scripted gRPC fault. */
export interface GrpcFaultRule {
  match?: GrpcFaultMatch;
  action: GrpcFaultAction;
  /** How many times the rule fires; default 1. */
  times?: number;
}

/** Where a message stands, for matching. */
export interface GrpcFaultContext {
  /** The kind of stream; default `write`. */
  method?: 'write' | 'read';
  bucket: string | undefined;
  object: string | undefined;
  stream: number;
  /** Whether this is the stream's first message. */
  first: boolean;
  /** The object range `[start, end)` the message's data covers (empty for a message without data). */
  start: number;
  end: number;
}

/** The scripted rules, in order; the first matching rule with firings left wins. */
export class GrpcFaultRules {
  readonly #rules: { rule: GrpcFaultRule; left: number }[] = [];

  /** Adds a rule after the existing ones; throws on a malformed rule. */
  add(rule: GrpcFaultRule): void {
    const type = (rule.action as { type?: unknown } | undefined)?.type;
    if (type !== 'break' && type !== 'status' && type !== 'stall' && type !== 'redirect' && type !== 'corrupt')
      throw new TypeError(`unknown gRPC fault type ${String(type)}`);
    if (type === 'corrupt' && (rule.match?.method !== 'read' || rule.match.offset === undefined))
      throw new TypeError("a 'corrupt' fault applies to read streams (method: 'read') at an offset (0: the first data message)");
    const times = rule.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new RangeError(`times must be a positive integer, got ${times}`);
    this.#rules.push({ rule, left: times });
  }

  /** Rules with firings left. */
  get pending(): number {
    return this.#rules.filter((entry) => entry.left > 0).length;
  }

  /** Removes every rule. */
  clear(): void {
    this.#rules.length = 0;
  }

  /** The action of the first rule matching `context` (consuming one firing), or undefined. */
  take(context: GrpcFaultContext): { action: GrpcFaultAction; offset: number | undefined } | undefined {
    const entry = this.#find(context);
    if (entry === undefined) return undefined;
    entry.left -= 1;
    return { action: entry.rule.action, offset: entry.rule.match?.offset };
  }

  /** The action `take(context)` would return, without consuming it. */
  peek(context: GrpcFaultContext): GrpcFaultAction | undefined {
    return this.#find(context)?.rule.action;
  }

  #find(context: GrpcFaultContext): { rule: GrpcFaultRule; left: number } | undefined {
    for (const entry of this.#rules) {
      if (entry.left === 0) continue;
      const match = entry.rule.match ?? {};
      if ((match.method ?? 'write') !== (context.method ?? 'write')) continue;
      if (match.bucket !== undefined && match.bucket !== context.bucket) continue;
      if (match.object !== undefined && match.object !== context.object) continue;
      if (match.stream !== undefined && match.stream !== context.stream) continue;
      if (match.offset === undefined ? !context.first : !(context.end > match.offset)) continue;
      return entry;
    }
    return undefined;
  }
}
