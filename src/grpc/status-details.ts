/**
 * `grpc-status-details-bin`: a `google.rpc.Status` whose `details` may hold a
 * `google.storage.v2.BidiWriteObjectRedirectedError` or a `BidiReadObjectRedirectedError`. Encoded and decoded by hand (protobuf's wire format for these
 * three small messages is a few varints and length-delimited fields), so that neither side has to load
 * `google/rpc/status.proto` into a second schema just to read one error detail.
 */

/** The type URL of the redirect detail, as GCS puts it into `google.protobuf.Any`. */
export const REDIRECT_TYPE_URL = 'type.googleapis.com/google.storage.v2.BidiWriteObjectRedirectedError';

/** The fields of a `BidiWriteObjectRedirectedError`. */
export interface WriteRedirect {
  routingToken?: string | undefined;
  writeHandle?: Buffer | undefined;
  /** Set when `writeHandle` is (decimal string: int64). */
  generation?: string | undefined;
}

/** The type URL of a read stream's redirect detail. */
export const READ_REDIRECT_TYPE_URL = 'type.googleapis.com/google.storage.v2.BidiReadObjectRedirectedError';

/** The fields of a `BidiReadObjectRedirectedError`. */
export interface ReadRedirect {
  routingToken?: string | undefined;
  readHandle?: Buffer | undefined;
}

/** A decoded `google.rpc.Status`, with the redirect detail if it carried one. */
export interface RpcStatus {
  code: number;
  message: string;
  redirect: WriteRedirect | undefined;
  /** A read stream's redirect, when the detail was a `BidiReadObjectRedirectedError`. */
  readRedirect?: ReadRedirect | undefined;
}

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

function field(number: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(BigInt((number << 3) | 2)), varint(BigInt(payload.length)), payload]);
}

function varintField(number: number, value: bigint): Buffer {
  return Buffer.concat([varint(BigInt(number << 3)), varint(value)]);
}

/** Encodes a `google.rpc.Status` carrying `redirect` (when given) as its only detail. */
export function encodeRpcStatus(code: number, message: string, redirect?: WriteRedirect): Buffer {
  const parts = [varintField(1, BigInt(code)), field(2, Buffer.from(message, 'utf8'))];
  if (redirect !== undefined) {
    const detail: Buffer[] = [];
    if (redirect.routingToken !== undefined) detail.push(field(1, Buffer.from(redirect.routingToken, 'utf8')));
    if (redirect.writeHandle !== undefined) detail.push(field(2, field(1, redirect.writeHandle)));
    if (redirect.generation !== undefined) detail.push(varintField(3, BigInt(redirect.generation)));
    parts.push(field(3, Buffer.concat([field(1, Buffer.from(REDIRECT_TYPE_URL, 'utf8')), field(2, Buffer.concat(detail))])));
  }
  return Buffer.concat(parts);
}

/** Encodes a `google.rpc.Status` carrying a `BidiReadObjectRedirectedError` as its only detail. */
export function encodeReadRedirectStatus(code: number, message: string, redirect: ReadRedirect): Buffer {
  const detail: Buffer[] = [];
  if (redirect.readHandle !== undefined) detail.push(field(1, field(1, redirect.readHandle)));
  if (redirect.routingToken !== undefined) detail.push(field(2, Buffer.from(redirect.routingToken, 'utf8')));
  const any = Buffer.concat([field(1, Buffer.from(READ_REDIRECT_TYPE_URL, 'utf8')), field(2, Buffer.concat(detail))]);
  return Buffer.concat([varintField(1, BigInt(code)), field(2, Buffer.from(message, 'utf8')), field(3, any)]);
}

/** One field of a message: its number and either a varint or a length-delimited payload. */
type WireField = { number: number; varint: bigint; bytes?: undefined } | { number: number; bytes: Buffer; varint?: undefined };

/** The fields of one message; throws on wire types other than varint and length-delimited (none occur here). */
function* fields(buffer: Buffer): Generator<WireField> {
  let position = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buffer[position++];
      if (byte === undefined) throw new RangeError('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new RangeError('varint too long');
    }
  };
  while (position < buffer.length) {
    const key = Number(readVarint());
    const number = key >>> 3;
    const type = key & 7;
    if (type === 0) yield { number, varint: readVarint() };
    else if (type === 2) {
      const length = Number(readVarint());
      if (position + length > buffer.length) throw new RangeError('truncated field');
      yield { number, bytes: buffer.subarray(position, position + length) };
      position += length;
    } else throw new RangeError(`unexpected wire type ${type}`);
  }
}

function decodeRedirect(value: Buffer): WriteRedirect {
  const redirect: WriteRedirect = {};
  for (const f of fields(value)) {
    if (f.number === 1 && f.bytes !== undefined) redirect.routingToken = f.bytes.toString('utf8');
    else if (f.number === 2 && f.bytes !== undefined) {
      for (const inner of fields(f.bytes))
        if (inner.number === 1 && inner.bytes !== undefined) redirect.writeHandle = Buffer.from(inner.bytes);
    } else if (f.number === 3 && f.varint !== undefined) redirect.generation = BigInt.asIntN(64, f.varint).toString();
  }
  return redirect;
}

function decodeReadRedirect(value: Buffer): ReadRedirect {
  const redirect: ReadRedirect = {};
  for (const f of fields(value)) {
    if (f.number === 1 && f.bytes !== undefined) {
      for (const inner of fields(f.bytes))
        if (inner.number === 1 && inner.bytes !== undefined) redirect.readHandle = Buffer.from(inner.bytes);
    } else if (f.number === 2 && f.bytes !== undefined) redirect.routingToken = f.bytes.toString('utf8');
  }
  return redirect;
}

/** Decodes `grpc-status-details-bin`; undefined when it is not a well-formed `google.rpc.Status`. */
export function decodeRpcStatus(buffer: Buffer): RpcStatus | undefined {
  try {
    const status: RpcStatus = { code: 0, message: '', redirect: undefined };
    for (const f of fields(buffer)) {
      if (f.number === 1 && f.varint !== undefined) status.code = Number(BigInt.asIntN(32, f.varint));
      else if (f.number === 2 && f.bytes !== undefined) status.message = f.bytes.toString('utf8');
      else if (f.number === 3 && f.bytes !== undefined) {
        let typeUrl = '';
        let value: Buffer = Buffer.alloc(0);
        for (const inner of fields(f.bytes)) {
          if (inner.number === 1 && inner.bytes !== undefined) typeUrl = inner.bytes.toString('utf8');
          else if (inner.number === 2 && inner.bytes !== undefined) value = inner.bytes;
        }
        if (typeUrl === REDIRECT_TYPE_URL) status.redirect = decodeRedirect(value);
        else if (typeUrl === READ_REDIRECT_TYPE_URL) status.readRedirect = decodeReadRedirect(value);
      }
    }
    return status;
  } catch {
    return undefined;
  }
}
