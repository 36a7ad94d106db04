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

/** Checkpoint format version (bumped on incompatible changes). */
export const CHECKPOINT_FORMAT = 1;

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
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path));
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
    if (t.shape.join(",") !== e.shape.join(",")) {
      throw mismatch(`${e.name} has shape [${t.shape}], model has [${e.shape}]`);
    }
  }
  if (tensors.size !== params.entries.length + 2) throw mismatch("parameter count differs");
  if (metadata.adam_sizes !== JSON.stringify(adam.sizes)) throw mismatch("optimizer layout differs");
  tf.tidy(() => {
    for (const e of params.entries) {
      e.variable!.assign(tf.tensor(tensors.get(`param/${e.name}`)!.data as Float32Array, e.shape, "float32"));
    }
    adam.m.assign(tf.tensor(tensors.get("adam/m")!.data as Float32Array, [adam.m.size], "float32"));
    adam.v.assign(tf.tensor(tensors.get("adam/v")!.data as Float32Array, [adam.v.size], "float32"));
  });
  adam.step = Number(metadata.adam_step);
  return JSON.parse(metadata.meta) as CheckpointMeta;
}
