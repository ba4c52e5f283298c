// A small MessagePack codec for chatgate's frames: maps, arrays, strings, binary, integers
// (to 2^53), floats, booleans and nil. Dependency-free; optional for the SDK.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a JSON-like value as MessagePack bytes. */
export function encode(value) {
  const out = [];
  write(value, out);
  return Uint8Array.from(out);
}

function pushUint(out, n, bytes) {
  for (let i = bytes - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
}

function write(v, out) {
  if (v === null || v === undefined) return out.push(0xc0);
  if (v === false) return out.push(0xc2);
  if (v === true) return out.push(0xc3);
  if (typeof v === "number") return writeNumber(v, out);
  if (typeof v === "string") {
    const b = textEncoder.encode(v);
    if (b.length < 32) out.push(0xa0 | b.length);
    else if (b.length < 0x100) out.push(0xd9, b.length);
    else if (b.length < 0x10000) { out.push(0xda); pushUint(out, b.length, 2); }
    else { out.push(0xdb); pushUint(out, b.length, 4); }
    for (const x of b) out.push(x);
    return;
  }
  if (v instanceof Uint8Array) {
    if (v.length < 0x100) out.push(0xc4, v.length);
    else if (v.length < 0x10000) { out.push(0xc5); pushUint(out, v.length, 2); }
    else { out.push(0xc6); pushUint(out, v.length, 4); }
    for (const x of v) out.push(x);
    return;
  }
  if (Array.isArray(v)) {
    if (v.length < 16) out.push(0x90 | v.length);
    else if (v.length < 0x10000) { out.push(0xdc); pushUint(out, v.length, 2); }
    else { out.push(0xdd); pushUint(out, v.length, 4); }
    for (const x of v) write(x, out);
    return;
  }
  if (typeof v === "object") {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    if (keys.length < 16) out.push(0x80 | keys.length);
    else if (keys.length < 0x10000) { out.push(0xde); pushUint(out, keys.length, 2); }
    else { out.push(0xdf); pushUint(out, keys.length, 4); }
    for (const k of keys) { write(k, out); write(v[k], out); }
    return;
  }
  throw new TypeError(`cannot encode ${typeof v} as MessagePack`);
}

function writeNumber(n, out) {
  if (!Number.isInteger(n) || !Number.isSafeInteger(n)) {
    out.push(0xcb);
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, n);
    for (let i = 0; i < 8; i++) out.push(view.getUint8(i));
    return;
  }
  if (n >= 0) {
    if (n < 128) out.push(n);
    else if (n < 0x100) out.push(0xcc, n);
    else if (n < 0x10000) { out.push(0xcd); pushUint(out, n, 2); }
    else if (n < 0x100000000) { out.push(0xce); pushUint(out, n, 4); }
    else { out.push(0xcf); pushUint(out, n, 8); }
  } else if (n >= -32) out.push(0xe0 | (n + 32));
  else if (n >= -128) out.push(0xd0, n & 0xff);
  else if (n >= -32768) { out.push(0xd1); pushUint(out, n & 0xffff, 2); }
  else if (n >= -2147483648) { out.push(0xd2); pushUint(out, n >>> 0, 4); }
  else { out.push(0xd3); pushUint(out, BigInt.asUintN(64, BigInt(n)), 8); }
}

/** Decodes MessagePack bytes (a Uint8Array or ArrayBuffer) into a JSON-like value. */
export function decode(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const need = (n) => { if (pos + n > buf.length) throw new RangeError("truncated MessagePack"); };
  const u = (n) => {
    need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(buf[pos++]);
    return v;
  };
  const num = (n) => Number(u(n));
  const str = (n) => { need(n); const s = textDecoder.decode(buf.subarray(pos, pos + n)); pos += n; return s; };
  const bin = (n) => { need(n); const b = buf.slice(pos, pos + n); pos += n; return b; };
  const arr = (n, depth) => { const a = []; for (let i = 0; i < n; i++) a.push(read(depth)); return a; };
  const map = (n, depth) => { const m = {}; for (let i = 0; i < n; i++) { const k = read(depth); m[k] = read(depth); } return m; };
  const read = (depth) => {
    if (depth > 512) throw new RangeError("MessagePack nested too deeply");
    need(1);
    const b = buf[pos++];
    if (b < 0x80) return b;
    if (b < 0x90) return map(b & 0x0f, depth + 1);
    if (b < 0xa0) return arr(b & 0x0f, depth + 1);
    if (b < 0xc0) return str(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(num(1));
      case 0xc5: return bin(num(2));
      case 0xc6: return bin(num(4));
      case 0xca: { need(4); const f = view.getFloat32(pos); pos += 4; return f; }
      case 0xcb: { need(8); const f = view.getFloat64(pos); pos += 8; return f; }
      case 0xcc: return num(1);
      case 0xcd: return num(2);
      case 0xce: return num(4);
      case 0xcf: return num(8);
      case 0xd0: return Number(BigInt.asIntN(8, u(1)));
      case 0xd1: return Number(BigInt.asIntN(16, u(2)));
      case 0xd2: return Number(BigInt.asIntN(32, u(4)));
      case 0xd3: return Number(BigInt.asIntN(64, u(8)));
      case 0xd9: return str(num(1));
      case 0xda: return str(num(2));
      case 0xdb: return str(num(4));
      case 0xdc: return arr(num(2), depth + 1);
      case 0xdd: return arr(num(4), depth + 1);
      case 0xde: return map(num(2), depth + 1);
      case 0xdf: return map(num(4), depth + 1);
      default: throw new RangeError(`unsupported MessagePack byte 0x${b.toString(16)}`);
    }
  };
  const value = read(0);
  if (pos !== buf.length) throw new RangeError("trailing bytes after MessagePack value");
  return value;
}
