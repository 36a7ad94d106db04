/**
 * The safetensors file format (8-byte little-endian header length, JSON header, raw little-endian
 * tensor bytes), used for final weights (PyTorch names and layouts, loadable with
 * `safetensors.torch.load_file` + `model.load_state_dict`) and, in tfjs layout, for checkpoints.
 *
 * @module
 */
import type { ParamEntry, WeightLayout } from "../models/core.ts";

/** Element types this project writes. */
export type StDtype = "F32" | "I32" | "I64";

/** One tensor of a safetensors file. */
export interface StTensor {
  dtype: StDtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

const BYTES: Record<StDtype, number> = { F32: 4, I32: 4, I64: 8 };

/** Serialises named tensors (in insertion order) and string metadata. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, StTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape}]`);
    }
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    // Typed arrays are little-endian on every platform Deno runs on.
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(raw, at);
    at += raw.length;
  }
  return out;
}

/**
 * Parses a safetensors file, validating everything it relies on: a JSON object header, string
 * metadata, and for each tensor a known dtype, a shape of non-negative integers, and data offsets
 * inside the file spanning exactly the shape's elements. Every defect is an `Error` whose message
 * starts with `safetensors: ` and names the tensor; the readers (train/checkpoint.ts,
 * train/weights.ts) turn it into a one-line UserError naming the file.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  const bad = (what: string) => new Error(`safetensors: ${what}`);
  if (bytes.length < 8) throw bad("file shorter than its 8-byte header length");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw bad("header length past the end of the file");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad("header is not valid JSON");
  }
  if (!isObject(header)) throw bad("header is not a JSON object");
  const base = 8 + n;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, spec] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(spec) || Object.values(spec).some((v) => typeof v !== "string")) {
        throw bad("__metadata__ is not an object of strings");
      }
      metadata = spec as Record<string, string>;
      continue;
    }
    if (!isObject(spec)) throw bad(`${name} has no tensor description`);
    const { dtype, shape, data_offsets: offsets } = spec;
    if (typeof dtype !== "string" || !Object.hasOwn(BYTES, dtype)) {
      throw bad(`${name} has unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw bad(`${name} has no valid shape (${JSON.stringify(shape) ?? "none"})`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw bad(`${name} has no valid data_offsets (${JSON.stringify(offsets) ?? "none"})`);
    }
    const [begin, end] = offsets as [number, number];
    if (base + end > bytes.length || begin > end) throw bad(`${name} offsets out of range`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const width = BYTES[dtype as StDtype];
    if (end - begin !== elements * width) {
      throw bad(
        `${name} holds ${end - begin} bytes for shape [${shape}] of ${dtype} ` +
          `(${elements} values, ${elements * width} bytes)`,
      );
    }
    const copy = bytes.slice(base + begin, base + end).buffer;
    const data = dtype === "F32"
      ? new Float32Array(copy)
      : dtype === "I32"
      ? new Int32Array(copy)
      : new BigInt64Array(copy);
    tensors.set(name, { dtype: dtype as StDtype, shape: shape as number[], data });
  }
  return { tensors, metadata };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A non-negative safe integer (a dimension or a byte offset). */
function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Axis permutation taking a tfjs (NHWC-era) weight to PyTorch's layout. */
export const TORCH_PERMUTATION: Record<WeightLayout, number[] | undefined> = {
  conv: [3, 2, 0, 1], // [kh,kw,cin,cout] -> [cout,cin,kh,kw]
  depthwise: [2, 3, 0, 1], // [kh,kw,C,1] -> [C,1,kh,kw]
  linear: [1, 0], // [in,out] -> [out,in]
  plain: undefined,
};

/** Transposes a row-major array of `shape` by `perm` (out axis i = in axis perm[i]). */
export function transpose(
  data: Float32Array,
  shape: number[],
  perm: number[],
): { data: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += idx[i] * strides[i];
    out[o] = data[src];
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < outShape[i]) break;
      idx[i] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/**
 * A PyTorch `state_dict` from the model's parameters (values read from the device): PyTorch names,
 * PyTorch layouts, and an int64 `num_batches_tracked` after each BatchNorm's `running_var` (the
 * number of training steps), so `load_state_dict(strict=True)` accepts it.
 */
export async function torchStateDict(
  entries: readonly ParamEntry[],
  trainingSteps: number,
): Promise<Map<string, StTensor>> {
  const out = new Map<string, StTensor>();
  for (const e of entries) {
    if (!e.variable) throw new Error(`torchStateDict: ${e.name} has no tensor (meta-mode parameters)`);
    const values = (await e.variable.data()) as Float32Array;
    const perm = TORCH_PERMUTATION[e.layout];
    const t = perm ? transpose(values, e.shape, perm) : { data: values, shape: e.shape };
    out.set(e.name, { dtype: "F32", shape: t.shape, data: t.data });
    if (e.name.endsWith(".running_var")) {
      out.set(e.name.replace(/running_var$/, "num_batches_tracked"), {
        dtype: "I64",
        shape: [],
        data: BigInt64Array.of(BigInt(trainingSteps)),
      });
    }
  }
  return out;
}
