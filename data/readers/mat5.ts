/**
 * A minimal MATLAB level-5 MAT-file reader: enough for Stanford Dogs' `train_list.mat` /
 * `test_list.mat` (top-level variables `file_list`, `annotation_list` (cell arrays of char
 * arrays) and `labels` (numeric column)). Handles zlib-compressed elements (MATLAB -v7), small
 * data elements, char, numeric and cell arrays, little- and big-endian files. Structs, sparse and
 * complex arrays are rejected.
 *
 * @module
 */

/** A decoded MAT value: a string (char array row), a numeric array (column-major), or a cell array. */
export type MatValue =
  | { kind: "char"; value: string }
  | { kind: "numeric"; dims: number[]; data: Float64Array }
  | { kind: "cell"; dims: number[]; cells: MatValue[] };

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

const MX_CELL = 1, MX_STRUCT = 2, MX_CHAR = 4;

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Element {
  type: number;
  data: Uint8Array;
}

/** Parses a level-5 MAT file into its named top-level variables. */
export async function readMat5(buf: Uint8Array, where: string): Promise<Map<string, MatValue>> {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (buf.length < 128) fail("too short for a MAT-file header");
  const header = new TextDecoder("latin1").decode(buf.subarray(0, 116));
  if (header.startsWith("MATLAB 7.3")) fail("MATLAB 7.3 (HDF5) files are not supported; re-save with -v7");
  if (!header.startsWith("MATLAB 5.0 MAT-file")) fail("not a MATLAB level-5 MAT-file");
  const indicator = String.fromCharCode(buf[126], buf[127]);
  if (indicator !== "IM" && indicator !== "MI") fail("bad endian indicator");
  const le = indicator === "IM";

  const readElements = (b: Uint8Array): Element[] => {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out: Element[] = [];
    let pos = 0;
    while (pos + 8 <= b.length) {
      const first = dv.getUint32(pos, le);
      let type: number, size: number, start: number, next: number;
      if (first >>> 16 !== 0) {
        // Small data element: type and size share the first word, data sits in the second.
        type = first & 0xffff;
        size = first >>> 16;
        start = pos + 4;
        next = pos + 8;
      } else {
        type = first;
        size = dv.getUint32(pos + 4, le);
        start = pos + 8;
        next = type === MI.COMPRESSED ? start + size : start + size + ((8 - (size % 8)) % 8);
      }
      if (start + size > b.length) fail("truncated data element");
      out.push({ type, data: b.subarray(start, start + size) });
      pos = next;
    }
    return out;
  };

  const numbers = (e: Element): Float64Array => {
    const dv = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    const width: Record<number, number> = {
      [MI.INT8]: 1,
      [MI.UINT8]: 1,
      [MI.UTF8]: 1,
      [MI.INT16]: 2,
      [MI.UINT16]: 2,
      [MI.UTF16]: 2,
      [MI.INT32]: 4,
      [MI.UINT32]: 4,
      [MI.UTF32]: 4,
      [MI.SINGLE]: 4,
      [MI.DOUBLE]: 8,
      [MI.INT64]: 8,
      [MI.UINT64]: 8,
    };
    const w = width[e.type] ?? fail(`unsupported numeric element type ${e.type}`);
    const n = Math.floor(e.data.length / w);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * w;
      switch (e.type) {
        case MI.INT8:
          out[i] = dv.getInt8(o);
          break;
        case MI.UINT8:
        case MI.UTF8:
          out[i] = dv.getUint8(o);
          break;
        case MI.INT16:
          out[i] = dv.getInt16(o, le);
          break;
        case MI.UINT16:
        case MI.UTF16:
          out[i] = dv.getUint16(o, le);
          break;
        case MI.INT32:
          out[i] = dv.getInt32(o, le);
          break;
        case MI.UINT32:
        case MI.UTF32:
          out[i] = dv.getUint32(o, le);
          break;
        case MI.SINGLE:
          out[i] = dv.getFloat32(o, le);
          break;
        case MI.DOUBLE:
          out[i] = dv.getFloat64(o, le);
          break;
        case MI.INT64:
          out[i] = Number(dv.getBigInt64(o, le));
          break;
        case MI.UINT64:
          out[i] = Number(dv.getBigUint64(o, le));
          break;
      }
    }
    return out;
  };

  const matrix = (e: Element): { name: string; value: MatValue } => {
    const parts = readElements(e.data);
    if (parts.length < 3) fail("malformed array element");
    const flags = numbers({ type: MI.UINT32, data: parts[0].data });
    const cls = flags[0] & 0xff;
    if (flags[0] & 0x800) fail("complex arrays are not supported");
    const dims = Array.from(numbers(parts[1]));
    const name = new TextDecoder().decode(parts[2].data);
    const n = dims.reduce((a, b) => a * b, 1);
    if (cls === MX_CELL) {
      const cells = parts.slice(3).map((p) => {
        if (p.type !== MI.MATRIX) fail("cell entry is not an array");
        return matrix(p).value;
      });
      if (cells.length !== n) fail(`cell array "${name}" has ${cells.length} of ${n} entries`);
      return { name, value: { kind: "cell", dims, cells } };
    }
    if (cls === MX_STRUCT) fail(`struct "${name}" is not supported`);
    if (parts.length < 4) return { name, value: { kind: "numeric", dims, data: new Float64Array(0) } };
    const data = parts[3];
    if (cls === MX_CHAR) {
      const codes = numbers(data);
      // Char arrays are column-major; a file name is a 1 x L row, so the order is the string order.
      let value = "";
      if (data.type === MI.UTF8) value = new TextDecoder().decode(data.data);
      else for (const c of codes) value += String.fromCodePoint(c);
      if (dims.length === 2 && dims[0] > 1) {
        fail(`char array "${name}" has ${dims[0]} rows; expected one string`);
      }
      return { name, value: { kind: "char", value } };
    }
    return { name, value: { kind: "numeric", dims, data: numbers(data) } };
  };

  const vars = new Map<string, MatValue>();
  const visit = async (elements: Element[]) => {
    for (const e of elements) {
      if (e.type === MI.COMPRESSED) await visit(readElements(await inflate(e.data)));
      else if (e.type === MI.MATRIX) {
        const { name, value } = matrix(e);
        vars.set(name, value);
      }
    }
  };
  await visit(readElements(buf.subarray(128)));
  return vars;
}

/** A cell array of strings (e.g. `file_list`), failing with a clear message otherwise. */
export function matStrings(v: MatValue | undefined, what: string): string[] {
  if (!v || v.kind !== "cell") throw new Error(`${what} is not a cell array`);
  return v.cells.map((c, i) => {
    if (c.kind === "char") return c.value;
    // Some writers wrap each string in a 1x1 cell.
    if (c.kind === "cell" && c.cells.length === 1 && c.cells[0].kind === "char") return c.cells[0].value;
    throw new Error(`${what}[${i}] is not a string`);
  });
}
