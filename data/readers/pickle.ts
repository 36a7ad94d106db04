/**
 * A minimal, data-only Python pickle reader: enough for the CIFAR "python version" files, which
 * are dicts of numpy uint8 arrays, lists of ints and strings. It interprets the binary opcodes of
 * protocols 1-5 but never calls anything: the only GLOBALs it accepts are the numpy array / dtype
 * reconstructors and `_codecs.encode` (how Python 3 pickles `bytes` at protocol 2), and it
 * rebuilds those values itself. Any other GLOBAL, or a text-protocol (0) opcode, is an error.
 *
 * @module
 */

/** A Python `bytes` (or Python 2 `str`) value. */
export class PyBytes {
  /** The raw bytes (a view into the pickle buffer, not a copy). */
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  /** The bytes decoded as latin-1, as `pickle.load(..., encoding="latin1")` does for Python 2 strings. */
  latin1(): string {
    let s = "";
    for (let i = 0; i < this.bytes.length; i += 8192) {
      s += String.fromCharCode(...this.bytes.subarray(i, i + 8192));
    }
    return s;
  }
}

/** A numpy array rebuilt from its pickled state. */
export interface NdArray {
  /** numpy dtype string without byte order, e.g. "u1", "i8". */
  dtype: string;
  /** Byte order character from the dtype state ("|", "<", ">", "="). */
  byteOrder: string;
  /** Array shape. */
  shape: number[];
  /** True for Fortran (column-major) order. */
  fortran: boolean;
  /** The raw element bytes. */
  data: Uint8Array;
}

/** A pickled Python value: null, boolean, number, bigint, string, PyBytes, arrays (lists and tuples), dicts or NdArrays. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyBytes
  | PyValue[]
  | Map<string, PyValue>
  | NdArray;

class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
}
class DtypeStub {
  byteOrder = "|";
  constructor(readonly descr: string) {}
}
class ArrayStub implements NdArray {
  dtype = "";
  byteOrder = "|";
  shape: number[] = [];
  fortran = false;
  data: Uint8Array = new Uint8Array(0);
}

type Item = PyValue | PyGlobal | DtypeStub | typeof MARK;
const MARK = Symbol("mark");

const ALLOWED_GLOBALS = new Set([
  "numpy.core.multiarray\n_reconstruct",
  "numpy._core.multiarray\n_reconstruct",
  "numpy\nndarray",
  "numpy\ndtype",
  "numpy.core.numeric\n_frombuffer",
  "numpy._core.numeric\n_frombuffer",
  "_codecs\nencode",
  // Python 3 pickles an empty bytes object at protocol 2 as a call of bytes().
  "__builtin__\nbytes",
  "builtins\nbytes",
]);

/**
 * Parses a pickle (protocols 1-5, binary opcodes) into plain values. `where` names the file in
 * error messages. Dict keys that are `bytes`/Python 2 `str` are decoded as latin-1, so
 * `b"data"` and `"data"` are both looked up as `"data"`.
 */
export function readPickle(buf: Uint8Array, where: string): PyValue {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: Item[] = [];
  const memo = new Map<number, Item>();
  let pos = 0;
  const fail = (msg: string): never => {
    throw new Error(`${where}: pickle offset ${pos}: ${msg}`);
  };
  const need = (n: number) => {
    if (pos + n > buf.length) fail("unexpected end of data");
  };
  const u8 = () => {
    need(1);
    return buf[pos++];
  };
  const u16 = () => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("length too large");
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  const line = () => {
    const end = buf.indexOf(10, pos);
    if (end < 0) fail("unterminated line");
    const s = new TextDecoder().decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(b);
  const pop = (): Item => {
    if (stack.length === 0) fail("stack underflow");
    return stack.pop()!;
  };
  const top = (): Item => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): Item[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) fail("no MARK on the stack");
    const items = stack.splice(k);
    items.shift();
    return items;
  };
  const key = (k: Item): string => {
    if (typeof k === "string") return k;
    if (k instanceof PyBytes) return k.latin1();
    if (typeof k === "number" || typeof k === "bigint") return String(k);
    return fail("unsupported dict key type");
  };
  const setItems = (d: Item, kv: Item[]) => {
    if (!(d instanceof Map)) fail("SETITEM on a non-dict");
    const m = d as Map<string, PyValue>;
    for (let i = 0; i + 1 < kv.length; i += 2) m.set(key(kv[i]), kv[i + 1] as PyValue);
  };
  const append = (l: Item, vs: Item[]) => {
    if (!Array.isArray(l)) fail("APPEND on a non-list");
    (l as PyValue[]).push(...(vs as PyValue[]));
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!ALLOWED_GLOBALS.has(`${module}\n${name}`)) {
      fail(`refusing GLOBAL ${module}.${name}: only numpy arrays, dtypes and bytes are understood`);
    }
    return new PyGlobal(module, name);
  };
  const bytesOf = (v: Item, what: string): Uint8Array => {
    if (v instanceof PyBytes) return v.bytes;
    // Python 2 pickles loaded by Python 3 with encoding="latin1" can carry raw data as str.
    if (typeof v === "string") return Uint8Array.from(v, (ch) => ch.charCodeAt(0) & 0xff);
    return fail(`${what} is not bytes`);
  };
  const reduce = (fn: Item, args: Item): Item => {
    if (!(fn instanceof PyGlobal) || !Array.isArray(args)) return fail("REDUCE of a non-callable");
    const a = args as Item[];
    switch (fn.name) {
      case "_reconstruct":
        return new ArrayStub();
      case "dtype": {
        const d = a[0] instanceof PyBytes ? a[0].latin1() : a[0];
        if (typeof d !== "string") return fail("numpy dtype without a type string");
        return new DtypeStub(d);
      }
      case "encode": {
        if (typeof a[0] !== "string") return fail("_codecs.encode of a non-string");
        const enc = String(a[1] ?? "utf-8").toLowerCase().replace("-", "");
        if (enc === "latin1" || enc === "iso88591") return new PyBytes(bytesOf(a[0], "payload"));
        return new PyBytes(new TextEncoder().encode(a[0]));
      }
      case "bytes":
        if (a.length !== 0) return fail("bytes() with arguments");
        return new PyBytes(new Uint8Array(0));
      case "_frombuffer": {
        const arr = new ArrayStub();
        arr.data = bytesOf(a[0], "array buffer");
        setDtype(arr, a[1]);
        arr.shape = shapeOf(a[2]);
        arr.fortran = a[3] === "F";
        return arr;
      }
      default:
        return fail(`cannot call ${fn.module}.${fn.name}`);
    }
  };
  const shapeOf = (v: Item): number[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number")) return fail("bad array shape");
    return v as number[];
  };
  const setDtype = (arr: ArrayStub, d: Item) => {
    if (!(d instanceof DtypeStub)) fail("array without a numpy dtype");
    const dt = d as DtypeStub;
    arr.dtype = dt.descr;
    arr.byteOrder = dt.byteOrder;
  };
  const build = (obj: Item, state: Item) => {
    if (obj instanceof DtypeStub) {
      if (Array.isArray(state) && typeof state[1] === "string") obj.byteOrder = state[1];
      else if (Array.isArray(state) && state[1] instanceof PyBytes) obj.byteOrder = state[1].latin1();
      return;
    }
    if (obj instanceof ArrayStub) {
      if (!Array.isArray(state) || state.length < 5) return fail("bad ndarray state");
      const s = state as Item[];
      obj.shape = shapeOf(s[1]);
      setDtype(obj, s[2]);
      obj.fortran = s[3] === true || s[3] === 1;
      if (Array.isArray(s[4])) return fail("object arrays are not supported");
      obj.data = bytesOf(s[4], "ndarray data");
      return;
    }
    fail("BUILD on an unsupported object");
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol newer than 5");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: { // STOP
        const v = pop();
        if (v instanceof PyGlobal || v instanceof DtypeStub || v === MARK) return fail("bad final value");
        return v as PyValue;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map<string, PyValue>());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark() as PyValue[]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop()] as PyValue[]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b] as PyValue[]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c] as PyValue[]);
        break;
      }
      case 0x64: { // DICT
        const kv = popMark();
        const d = new Map<string, PyValue>();
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark() as PyValue[]);
        break;
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const vs = popMark();
        append(top(), vs);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const idx = op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) fail(`memo ${idx} not set`);
        stack.push(memo.get(idx)!);
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
        );
        break;
      }
      case 0x47: { // BINFLOAT
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        stack.push(new PyBytes(take(u8())));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(new PyBytes(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new PyBytes(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(new PyBytes(take(u32())));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(new PyBytes(take(u64())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        stack.push(reduce(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        build(top(), state);
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(
          `unsupported opcode 0x${
            op.toString(16).padStart(2, "0")
          } (only binary protocols 1-5 are understood)`,
        );
    }
  }
}

/** True if `v` is an {@link NdArray} produced by {@link readPickle}. */
export function isNdArray(v: unknown): v is NdArray {
  return v instanceof ArrayStub;
}

/** Returns a dict entry, failing with the file name if the value is not a dict or lacks the key. */
export function dictGet(v: PyValue, key: string, where: string): PyValue {
  if (!(v instanceof Map)) throw new Error(`${where}: expected a pickled dict`);
  if (!v.has(key)) {
    throw new Error(`${where}: pickled dict has no key "${key}" (keys: ${[...v.keys()].join(", ")})`);
  }
  return v.get(key)!;
}

/** A pickled list of non-negative ints as an Int32Array. */
export function intList(v: PyValue, where: string): Int32Array {
  if (!Array.isArray(v)) {
    if (isNdArray(v) && (v.dtype === "i8" || v.dtype === "i4" || v.dtype === "u1")) return ndInts(v, where);
    throw new Error(`${where}: expected a list of ints`);
  }
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== "number" || !Number.isInteger(x)) {
      throw new Error(`${where}: list item ${i} is not an int`);
    }
    out[i] = x;
  }
  return out;
}

function ndInts(a: NdArray, where: string): Int32Array {
  const n = a.shape.reduce((p, q) => p * q, 1);
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Int32Array(n);
  const size = a.dtype === "u1" ? 1 : a.dtype === "i4" ? 4 : 8;
  if (a.data.byteLength !== n * size) throw new Error(`${where}: array data has the wrong length`);
  const le = a.byteOrder !== ">";
  for (let i = 0; i < n; i++) {
    out[i] = size === 1 ? a.data[i] : size === 4 ? dv.getInt32(i * 4, le) : Number(dv.getBigInt64(i * 8, le));
  }
  return out;
}

/** A pickled list of strings (str or bytes) as JS strings. */
export function stringList(v: PyValue, where: string): string[] {
  if (!Array.isArray(v)) throw new Error(`${where}: expected a list of strings`);
  return v.map((x, i) => {
    if (typeof x === "string") return x;
    if (x instanceof PyBytes) return x.latin1();
    throw new Error(`${where}: list item ${i} is not a string`);
  });
}
