/**
 * Divergence checks: the loss can stay finite while weights, Adam moments or BatchNorm running
 * statistics already hold NaN/Inf (e.g. a running variance that overflows while the normalised
 * output stays finite). The training loop calls {@link assertFiniteState} after every epoch and before
 * it saves a checkpoint or the final weights, so that no non-finite state is ever written, and
 * checkpoints are screened with {@link firstNonFinite} before a resume.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import { UserError } from "../runtime/errors.ts";
import type { Params } from "../models/core.ts";
import type { AdamState } from "./optimizer.ts";

/** Exit code of a run stopped for divergence (README, RELIABILITY.md). */
export const DIVERGED_EXIT_CODE = 3;

/** A named tensor to screen. */
export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/** Every parameter and buffer of `params` (BN statistics included) and Adam's flat moments. */
function trainingState(params: Params, adam?: AdamState): NamedTensor[] {
  const out: NamedTensor[] = [];
  for (const e of params.entries) if (e.variable) out.push({ name: e.name, tensor: e.variable });
  if (adam) {
    out.push({ name: "adam/m (Adam first moment)", tensor: adam.m });
    out.push({ name: "adam/v (Adam second moment)", tensor: adam.v });
  }
  return out;
}

/**
 * The first tensor holding a NaN or ±Inf, with how many such values it holds, or undefined. On the
 * device: one count of non-finite values per tensor, stacked into one vector and read back once
 * (tfjs-webgpu's isFinite tests the bit pattern, so a shader compiler cannot assume NaN away).
 */
export async function firstNonFiniteTensor(
  tensors: readonly NamedTensor[],
): Promise<{ name: string; count: number } | undefined> {
  if (tensors.length === 0) return undefined;
  const counts = tf.tidy(() =>
    tf.stack(
      tensors.map(({ tensor }) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(tensor)), "int32"))),
    )
  );
  const host = (await counts.data()) as Int32Array;
  counts.dispose();
  const i = host.findIndex((c) => c !== 0);
  return i < 0 ? undefined : { name: tensors[i].name, count: host[i] };
}

/**
 * Throws a {@link UserError} with exit code 3 when any parameter, BN statistic or Adam moment is
 * non-finite. `when` says where the run is ("after epoch 3"); `keep` what stays valid on disk.
 */
export async function assertFiniteState(
  params: Params,
  adam: AdamState | undefined,
  when: string,
  keep: string,
): Promise<void> {
  const bad = await firstNonFiniteTensor(trainingState(params, adam));
  if (bad) {
    throw new UserError(
      `training diverged: ${bad.name} holds ${bad.count} NaN/Inf value${bad.count > 1 ? "s" : ""} ${when}; ` +
        `stopped without saving it. ${keep}; lower --lr-max or check the data`,
      DIVERGED_EXIT_CODE,
    );
  }
}

/** The first of `arrays` (host data, e.g. a decoded checkpoint) holding a NaN or ±Inf, or undefined. */
export function firstNonFinite(
  arrays: Iterable<[string, ArrayLike<number>]>,
): { name: string; index: number; value: number } | undefined {
  for (const [name, a] of arrays) {
    for (let i = 0; i < a.length; i++) {
      // x - x is 0 for every finite x and NaN for NaN and ±Inf: one compare per element.
      const x = a[i];
      if (x - x !== 0) return { name, index: i, value: x };
    }
  }
  return undefined;
}

/** What stays on disk when epoch `epoch` (0-based) diverges: the checkpoint of the epoch before, if any. */
export function lastGood(checkpoint: string, epoch: number): string {
  return epoch === 0
    ? "No checkpoint was written (the first epoch diverged)"
    : `${checkpoint} (end of epoch ${epoch}) is kept`;
}
