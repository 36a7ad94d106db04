/**
 * Weights in: the inverse of `torchStateDict` (train/safetensors.ts). A PyTorch-named, PyTorch-laid-
 * out safetensors file (what `train` writes as weights.safetensors / best.safetensors, or what
 * `safetensors.torch.save_file(model.state_dict())` writes for the same architecture) is checked
 * strictly against a model's parameters — every name present, none extra, every shape equal — and
 * copied into them in tfjs layout.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { UserError } from "../runtime/errors.ts";
import { type ModelOptions, type ParamEntry, Params } from "../models/core.ts";
import { modelSpec } from "../models/registry.ts";
import { decodeSafetensors, type StTensor, TORCH_PERMUTATION, transpose } from "./safetensors.ts";

/** A state dict entry the model expects: its PyTorch name, shape and dtype. */
export interface ExpectedTensor {
  name: string;
  shape: number[];
  dtype: "F32" | "I64";
}

/**
 * The names, shapes and dtypes of the state dict `torchStateDict` writes for these parameters (and
 * `torch.nn.Module.state_dict()` holds for the same architecture): PyTorch layouts, and an int64
 * scalar `num_batches_tracked` after each BatchNorm's `running_var`.
 */
export function expectedStateDict(entries: readonly ParamEntry[]): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  for (const e of entries) {
    const perm = TORCH_PERMUTATION[e.layout];
    out.push({ name: e.name, shape: perm ? perm.map((p) => e.shape[p]) : [...e.shape], dtype: "F32" });
    if (e.name.endsWith(".running_var")) {
      out.push({ name: e.name.replace(/running_var$/, "num_batches_tracked"), shape: [], dtype: "I64" });
    }
  }
  return out;
}

/** Every difference between a file's tensors and what the model expects. */
export interface StateDictMismatch {
  missing: string[];
  unexpected: string[];
  /** Name, the file's shape/dtype and the model's. */
  wrong: { name: string; file: string; model: string }[];
}

/** Compares `tensors` with {@link expectedStateDict} (exact names, shapes and dtypes). */
export function compareStateDict(
  expected: readonly ExpectedTensor[],
  tensors: ReadonlyMap<string, Pick<StTensor, "shape" | "dtype">>,
): StateDictMismatch {
  const want = new Map(expected.map((e) => [e.name, e]));
  const missing = expected.filter((e) => !tensors.has(e.name)).map((e) => e.name);
  const unexpected = [...tensors.keys()].filter((n) => !want.has(n));
  const wrong: StateDictMismatch["wrong"] = [];
  for (const [name, t] of tensors) {
    const e = want.get(name);
    if (!e) continue;
    if (t.shape.join(",") !== e.shape.join(",") || t.dtype !== e.dtype) {
      wrong.push({ name, file: `${t.dtype}[${t.shape}]`, model: `${e.dtype}[${e.shape}]` });
    }
  }
  return { missing, unexpected, wrong };
}

/** One line listing every mismatch (at most `limit` of each kind, then a count). */
function describeMismatch(m: StateDictMismatch, limit = 8): string {
  const list = (xs: string[]) =>
    xs.slice(0, limit).join(", ") + (xs.length > limit ? `, … (${xs.length - limit} more)` : "");
  const parts: string[] = [];
  if (m.missing.length) parts.push(`${m.missing.length} missing (${list(m.missing)})`);
  if (m.unexpected.length) parts.push(`${m.unexpected.length} unexpected (${list(m.unexpected)})`);
  if (m.wrong.length) {
    parts.push(
      `${m.wrong.length} with another shape (${
        list(m.wrong.map((w) => `${w.name}: file ${w.file}, model ${w.model}`))
      })`,
    );
  }
  return parts.join("; ");
}

/**
 * Copies a state dict into `params` (strict: a {@link UserError} naming `file` and listing every
 * mismatch, exit 2, before any parameter is changed). `num_batches_tracked` is checked, not stored.
 */
export function loadStateDict(params: Params, tensors: ReadonlyMap<string, StTensor>, file: string): void {
  const m = compareStateDict(expectedStateDict(params.entries), tensors);
  if (m.missing.length || m.unexpected.length || m.wrong.length) {
    throw new UserError(
      `${file}: does not match the model's parameters: ${describeMismatch(m)}; ` +
        `use weights written for the same --model and class count`,
    );
  }
  tf.tidy(() => {
    for (const e of params.entries) {
      if (!e.variable) throw new Error(`loadStateDict: ${e.name} has no tensor (meta-mode parameters)`);
      const t = tensors.get(e.name)!;
      const perm = TORCH_PERMUTATION[e.layout];
      let data = t.data as Float32Array;
      if (perm) {
        const inverse = new Array<number>(perm.length);
        perm.forEach((p, i) => (inverse[p] = i));
        data = transpose(data, t.shape, inverse).data;
      }
      e.variable.assign(tf.tensor(data, e.shape, "float32"));
    }
  });
}

/** Reads a safetensors weights file; a missing or malformed file is a one-line UserError. */
export async function readWeightsFile(
  path: string,
): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UserError(`${path}: file not found`);
    throw new UserError(`${path}: cannot read: ${(err as Error).message}`);
  }
  try {
    return decodeSafetensors(bytes);
  } catch (err) {
    const why = String((err as Error)?.message ?? err).split("\n")[0].replace(/^safetensors: /, "");
    throw new UserError(`${path}: not a valid safetensors file (${why})`);
  }
}

/**
 * Reads `file` and checks it against the parameters model `id` has with `options`, counted in meta
 * mode (no tensors, no GPU), so `train --init-from` refuses a mismatching file before any work.
 * Returns the tensors for {@link loadStateDict}.
 */
export async function readInitWeights(
  file: string,
  id: string,
  options: ModelOptions,
): Promise<Map<string, StTensor>> {
  const { tensors } = await readWeightsFile(file);
  const spec = modelSpec(id);
  const meta = new Params(0, true);
  spec.build(meta, { ...spec.defaults, ...options });
  const m = compareStateDict(expectedStateDict(meta.entries), tensors);
  if (m.missing.length || m.unexpected.length || m.wrong.length) {
    throw new UserError(
      `--init-from ${file}: does not match ${id}'s parameters (${options.numClasses} classes): ${
        describeMismatch(m)
      }; ` +
        `use weights of the same --model and class count`,
    );
  }
  return tensors;
}
