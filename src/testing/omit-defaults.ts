/**
 * proto3 on the local server's wire: a field without presence that holds its default (0, '', false, empty bytes,
 * the first enum value, an empty list or map) is not sent, as GCS and every protobuf runtime but protobufjs do.
 * protobufjs encodes whatever is set, so an explicit `size: '0'` would reach clients that a real server never sends
 * it to, and a client that mistakes an absent `size` for an unknown one would pass here and fail against GCS. Every
 * answer of the server goes through {@link withoutDefaultsOnTheWire}'s serializers: the route code stays free to set
 * every field. Fields with presence (proto3 `optional`, oneof members, messages) are sent whatever they hold.
 */
import type * as Grpc from '@grpc/grpc-js';
import type { ProtoDescriptor } from '../grpc/grpc-stack.js';

/** A node of a protobufjs JSON descriptor: a namespace, message type, enum or service. */
interface DescriptorNode {
  nested?: Record<string, DescriptorNode>;
  fields?: Record<string, { type: string; id: number; rule?: string; keyType?: string }>;
  oneofs?: Record<string, { oneof: string[] }>;
  values?: Record<string, number>;
  methods?: Record<string, { requestType: string; responseType: string }>;
}

type Message = Record<string, unknown>;

const SCALARS = new Set([
  'double',
  'float',
  'int32',
  'uint32',
  'sint32',
  'fixed32',
  'sfixed32',
  'int64',
  'uint64',
  'sint64',
  'fixed64',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);

/** Field types of one descriptor, resolved as protobuf scopes them (innermost scope first). */
class DescriptorTypes {
  readonly #root: DescriptorNode;

  constructor(root: DescriptorNode) {
    this.#root = root;
  }

  /** The node of the fully qualified `name`, if any. */
  node(name: string): DescriptorNode | undefined {
    let node: DescriptorNode | undefined = this.#root;
    for (const part of name.split('.')) node = node?.nested?.[part];
    return node;
  }

  /** The fully qualified name `reference` denotes from within `scope` (a fully qualified type or service name). */
  resolve(reference: string, scope: string): string | undefined {
    if (reference.startsWith('.')) return this.node(reference.slice(1)) === undefined ? undefined : reference.slice(1);
    const parts = scope.split('.');
    for (let depth = parts.length; depth >= 0; depth--) {
      const candidate = [...parts.slice(0, depth), reference].join('.');
      if (this.node(candidate) !== undefined) return candidate;
    }
    return undefined;
  }

  /** `message` (of the type `typeName`) without the fields that hold their default and have no presence. */
  strip(message: Message, typeName: string): Message {
    const type = this.node(typeName);
    if (type?.fields === undefined) return message;
    const presence = new Set(Object.values(type.oneofs ?? {}).flatMap((oneof) => oneof.oneof));
    const out: Message = {};
    for (const [key, value] of Object.entries(message)) {
      const field = type.fields[key];
      if (value === undefined || value === null) continue;
      if (field === undefined) {
        out[key] = value; // not a field (a oneof's name, say): protobufjs ignores it
        continue;
      }
      const scalar = SCALARS.has(field.type);
      const resolved = scalar ? undefined : this.resolve(field.type, typeName);
      const target = resolved === undefined ? undefined : this.node(resolved);
      const isMessage = target?.fields !== undefined && resolved !== undefined;
      const each = (item: unknown): unknown => (isMessage && isMessageValue(item) ? this.strip(item, resolved) : item);
      if (field.rule === 'repeated') {
        if (Array.isArray(value) && value.length > 0) out[key] = value.map(each);
      } else if (field.keyType !== undefined) {
        const entries = Object.entries(value as Record<string, unknown>);
        if (entries.length > 0) out[key] = Object.fromEntries(entries.map(([k, v]) => [k, each(v)]));
      } else if (isMessage) {
        out[key] = each(value);
      } else if (presence.has(key) || !isDefault(value, field.type, target?.values)) {
        out[key] = value;
      }
    }
    return out;
  }
}

function isMessageValue(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && !(value instanceof Uint8Array);
}

/** Whether `value` is the proto3 default of a scalar of `type`, or of an enum with `values`. */
function isDefault(value: unknown, type: string, values: Record<string, number> | undefined): boolean {
  if (values !== undefined) return value === 0 || (typeof value === 'string' && values[value] === 0);
  switch (type) {
    case 'bool':
      return value === false;
    case 'string':
      return value === '';
    case 'bytes':
      return (value instanceof Uint8Array && value.length === 0) || value === '';
    default:
      // Numbers, or decimal strings for 64-bit integers (longs: String).
      return (typeof value === 'number' || typeof value === 'string') && Number(value) === 0;
  }
}

/**
 * `service` (the `serviceName` service of `descriptor`, as grpc-js defines it) with serializers that leave out every
 * field holding its default without presence, as proto3 encoders do.
 */
export function withoutDefaultsOnTheWire(
  service: Grpc.ServiceDefinition,
  descriptor: ProtoDescriptor,
  serviceName: string,
): Grpc.ServiceDefinition {
  const types = new DescriptorTypes(descriptor as DescriptorNode);
  const methods = types.node(serviceName)?.methods ?? {};
  const wrapped = Object.entries(service).map(([key, method]) => {
    const name = method.path.split('/').pop() ?? key;
    const reference = methods[name]?.responseType;
    const responseType = reference === undefined ? undefined : types.resolve(reference, serviceName);
    if (responseType === undefined) throw new Error(`no response type for ${method.path} in the descriptor`);
    const serialize = (value: object): Buffer => method.responseSerialize(types.strip(value as Message, responseType));
    return [key, { ...method, responseSerialize: serialize }] as const;
  });
  return Object.fromEntries(wrapped);
}
