/**
 * GPU data augmentation: WGSL kernels that turn a uint8 HWC batch into the normalised float32
 * NHWC batch the models consume, with torchvision/PIL semantics (docs/protocol.md §1.3, §2.3).
 *
 * The parts: layout.ts (parameter tensor layout), programs.ts (WGSL programs and passes), draws.ts
 * (CPU random draws), compile.ts (protocol → pipeline → batch plan); this module runs a batch.
 *
 * Pipeline of one batch (each stage one tfjs WebGPU program, so tfjs owns ordering and buffers):
 * 1. upload: the uint8 batch `[B, H, W, C]` goes up as one int32 per RGB pixel (grey replicated);
 * 2. geometry: crop box → PIL-style antialiased bilinear resize to S×S (random-resized-crop,
 *    Resize, Resize+CenterCrop) as PIL's two separable passes (horizontal, then vertical, each
 *    rounded to uint8), optional horizontal flip; kept packed, one int32 per pixel `[B, S, S]`;
 * 3. zero or more op passes: each applies one per-image op (RandAugment's 14 ops, ColorJitter's
 *    four) with uint8 truncation/clipping as PIL; a pass whose ops need image statistics
 *    (contrast mean, autocontrast range, equalize LUT) is preceded by a per-image stats kernel;
 * 4. output: ToTensor + Normalize, RandomErasing (on the normalised values), CutMix paste, into
 *    float32 `[B, S, S, 3]`.
 *
 * All randomness is drawn on the CPU from an {@link Rng} into small per-image parameter tensors
 * ({@link planTrainBatch}); the kernels are deterministic. Nothing is read back.
 *
 * Known deviations from PIL (tested bounds in tests/augment_test.ts): float weights instead of
 * PIL's 22-bit fixed-point ones in the resize (±1 level where a value sits on a .5 tie); float32 instead of
 * PIL's mixed float/double arithmetic in hue and autocontrast (rare ±1 in the uint8 domain, and an
 * occasional 1-step hue difference); autocontrast uses the exact integer form of PIL's LUT formula.
 *
 * @module
 */
import type { Tensor } from "../../runtime/tf.ts";
import { geometryPass, opPass, outputPass, type SourceShape, uploadBytes } from "./programs.ts";
import { type AugmentPipeline, type BatchPlan, type OriginalSizes, planEvalBatch } from "./compile.ts";

export * from "./layout.ts";
export * from "./programs.ts";
export * from "./draws.ts";
export * from "./compile.ts";

/**
 * Runs a planned training batch on the GPU: uint8 `pixels` [B, H, W, C] → float32 [B, S, S, 3].
 * Only the returned tensor stays alive; `pixels` may be reused when this returns.
 */
export function augmentTrainBatch(
  p: AugmentPipeline,
  plan: BatchPlan,
  pixels: Uint8Array,
  shape: SourceShape,
): Tensor {
  const src = uploadBytes(pixels, shape);
  let img: Tensor;
  try {
    img = geometryPass(src, shape, plan.geom, p.size);
  } finally {
    src.dispose();
  }
  for (const pass of plan.passes) {
    const next = opPass(img, pass);
    img.dispose();
    img = next;
  }
  try {
    return outputPass(img, p, plan.erase, plan.cutmix);
  } finally {
    img.dispose();
  }
}

/**
 * Runs an evaluation batch: geometry + normalisation, float32 [B, S, S, 3]. `original`: the batch's
 * original sizes and how the stored images were cut from them ({@link planEvalBatch}).
 */
export function augmentEvalBatch(
  p: AugmentPipeline,
  pixels: Uint8Array,
  shape: SourceShape,
  original?: OriginalSizes,
): Tensor {
  const src = uploadBytes(pixels, shape);
  let img: Tensor;
  try {
    img = geometryPass(src, shape, planEvalBatch(p, shape.n, original), p.size);
  } finally {
    src.dispose();
  }
  try {
    return outputPass(img, p);
  } finally {
    img.dispose();
  }
}
