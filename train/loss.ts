/**
 * The reference loss: `nn.CrossEntropyLoss(label_smoothing=0.05)` on CutMix batches,
 * `λ·CE_ls(logits, y_a) + (1−λ)·CE_ls(logits, y_b)` with the raw λ, batch mean.
 *
 * CE is linear in its target, so this equals one CE against the mixed smoothed target
 * `λ·q(y_a) + (1−λ)·q(y_b)` with `q(y) = (1−ε)·onehot(y) + ε/C` (PyTorch's smoothing), which
 * is how it is computed: one log-softmax, one product, one sum.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";

/** The reference label smoothing. */
export const LABEL_SMOOTHING = 0.05;

/**
 * Mean over the batch of `λ·CE_ls(y_a) + (1−λ)·CE_ls(y_b)`. `logits` [B, C] float32, `yA`/`yB`
 * [B] int32, `lambda` the CutMix weight of y_a (1 without CutMix): a number, or a float32 tensor
 * of one element on the device (the training step's step-scalar slot, so the step's dispatches do
 * not change with λ).
 */
export function cutmixSmoothedCrossEntropy(
  logits: Tensor,
  yA: Tensor,
  yB: Tensor,
  lambda: number | Tensor,
  smoothing = LABEL_SMOOTHING,
): Tensor {
  return tf.tidy(() => {
    const [b, c] = logits.shape as [number, number];
    if (typeof lambda !== "number") {
      const lam = tf.reshape(lambda, []);
      const hotT = (y: Tensor, w: Tensor) => tf.mul(tf.oneHot(tf.cast(y, "int32") as tf.Tensor1D, c), w);
      const target = tf.add(
        tf.add(hotT(yA, tf.mul(lam, 1 - smoothing)), hotT(yB, tf.mul(tf.sub(1, lam), 1 - smoothing))),
        smoothing / c,
      );
      return tf.div(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)))), b);
    }
    const hot = (y: Tensor, w: number) =>
      tf.mul(tf.oneHot(tf.cast(y, "int32") as tf.Tensor1D, c), w * (1 - smoothing));
    const target = lambda === 1
      ? tf.add(hot(yA, 1), smoothing / c)
      : tf.add(tf.add(hot(yA, lambda), hot(yB, 1 - lambda)), smoothing / c);
    return tf.div(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)))), b);
  });
}
