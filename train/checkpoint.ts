/**
 * Training checkpoints: everything needed to continue a run bit-for-bit — every parameter and
 * BatchNorm buffer (tfjs layout), Adam's moments and step, the number of finished epochs, every
 * RNG state, the preset and the per-epoch history — in one safetensors file written atomically at
 * the end of each epoch. A run killed mid-epoch therefore loses at most that epoch.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { writeFileAtomic } from "../runtime/fs.ts";
import { UserError } from "../runtime/errors.ts";
import type { Params } from "../models/core.ts";
import type { AdamState } from "./optimizer.ts";
import { decodeSafetensors, encodeSafetensors, type StTensor } from "./safetensors.ts";
import { firstNonFinite } from "./health.ts";

/** Checkpoint format version (bumped on incompatible changes). */
const CHECKPOINT_FORMAT = 1;

/** The non-tensor part of a checkpoint (stored as JSON in the safetensors metadata). */
export interface CheckpointMeta {
  /** Epochs fully trained and evaluated (the next epoch to run). */
  epochsDone: number;
  /** Named RNG states (e.g. `model` for dropout, `loader` for order/augmentation/CutMix). */
  rngs: Record<string, number[]>;
  /** Anything else the loop needs to continue (preset, history, best epoch, timings). */
  run: Record<string, unknown>;
}

/** Writes a checkpoint of `params`, `adam` and `meta` to `path` (temp file + rename). */
export async function saveCheckpoint(
  path: string,
  params: Params,
  adam: AdamState,
  meta: CheckpointMeta,
): Promise<void> {
  const tensors = new Map<string, StTensor>();
  for (const e of params.entries) {
    tensors.set(`param/${e.name}`, {
      dtype: "F32",
      shape: e.shape,
      data: (await e.variable!.data()) as Float32Array,
    });
  }
  const n = adam.m.size;
  tensors.set("adam/m", { dtype: "F32", shape: [n], data: (await adam.m.data()) as Float32Array });
  tensors.set("adam/v", { dtype: "F32", shape: [n], data: (await adam.v.data()) as Float32Array });
  const metadata = {
    format: String(CHECKPOINT_FORMAT),
    adam_step: String(adam.step),
    adam_sizes: JSON.stringify(adam.sizes),
    meta: JSON.stringify(meta),
  };
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Restores `params` and `adam` (already built for the same model) from `path` and returns the
 * metadata. Throws UserError when the file belongs to another model or format.
 */
export async function loadCheckpoint(path: string, params: Params, adam: AdamState): Promise<CheckpointMeta> {
  const { tensors, metadata, meta } = await readCheckpointFile(path);
  if (metadata.format !== String(CHECKPOINT_FORMAT)) {
    throw new UserError(
      `${path}: checkpoint format ${metadata.format}, expected ${CHECKPOINT_FORMAT}; start a new run`,
    );
  }
  const mismatch = (what: string) =>
    new UserError(
      `${path}: ${what}; this checkpoint is from another model or configuration (remove it or use another --out)`,
    );
  for (const e of params.entries) {
    const t = tensors.get(`param/${e.name}`);
    if (!t) throw mismatch(`no parameter ${e.name}`);
    if (t.dtype !== "F32") throw mismatch(`${e.name} is ${t.dtype}, not F32`);
    if (t.shape.join(",") !== e.shape.join(",")) {
      throw mismatch(`${e.name} has shape [${t.shape}], model has [${e.shape}]`);
    }
  }
  if (tensors.size !== params.entries.length + 2) throw mismatch("parameter count differs");
  if (metadata.adam_sizes !== JSON.stringify(adam.sizes)) throw mismatch("optimizer layout differs");
  for (const k of ["adam/m", "adam/v"]) {
    const t = tensors.get(k);
    if (t?.dtype !== "F32" || t.data.length !== adam.m.size) throw mismatch(`${k} does not cover the model`);
  }
  tf.tidy(() => {
    for (const e of params.entries) {
      e.variable!.assign(tf.tensor(tensors.get(`param/${e.name}`)!.data as Float32Array, e.shape, "float32"));
    }
    adam.m.assign(tf.tensor(tensors.get("adam/m")!.data as Float32Array, [adam.m.size], "float32"));
    adam.v.assign(tf.tensor(tensors.get("adam/v")!.data as Float32Array, [adam.v.size], "float32"));
  });
  adam.step = Number(metadata.adam_step);
  return meta;
}

/**
 * Reads and validates a checkpoint file without touching any model: a truncated or tampered file
 * (bad header, offsets, sizes or metadata) and a tensor holding NaN/Inf are one-line
 * {@link UserError}s naming the file (and the first bad tensor), so a resume never trains on them.
 */
async function readCheckpointFile(
  path: string,
): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string>; meta: CheckpointMeta }> {
  const bytes = await Deno.readFile(path);
  const corrupt = (what: string) =>
    new UserError(
      `${path}: corrupt checkpoint (${what}); remove it to start the run afresh, or restore a good copy`,
    );
  let decoded;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (err) {
    throw corrupt(String((err as Error).message ?? err).replace(/^safetensors: /, ""));
  }
  // decodeSafetensors has checked every dtype, shape and length against the header.
  const { tensors, metadata } = decoded;
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata?.meta ?? "") as CheckpointMeta;
  } catch {
    throw corrupt("unreadable metadata");
  }
  if (!meta || typeof meta.epochsDone !== "number" || !meta.rngs || !meta.run) {
    throw corrupt("metadata lacks epochsDone/rngs/run");
  }
  const bad = firstNonFinite(
    [...tensors].filter(([, t]) => t.dtype === "F32").map(([name, t]) => [name, t.data as Float32Array]),
  );
  if (bad) {
    throw new UserError(
      `${path}: ${bad.name} holds ${bad.value} (element ${bad.index}): the run had diverged when this ` +
        `checkpoint was written; it cannot be resumed. Remove it to start afresh with a lower --lr-max`,
    );
  }
  return { tensors, metadata, meta };
}
