/**
 * The custom-kernel path (WebGPU, custom WGSL kernels: depthwise, SE, fused BatchNorm+activation,
 * matmul, patchify convs) for all 11 models, checked against PyTorch in float64 by the parity
 * harness (tests/parity_harness.ts): eval logits within 1e-4 and train-mode logits within 10x
 * PyTorch float32's own rounding distance, as on the stock path. Gradients within 100x that
 * distance (floor 1e-4) and BatchNorm running statistics within 1e-3: the custom kernels sum in
 * other orders than PyTorch (one-pass shifted BatchNorm moments, K-split matmuls), measured up to
 * 29x (FBNet) and 2.2e-4 (MobileOne) here (TESTING.md); a wiring or gradient bug is 1e3x and more.
 * Tiny shapes keep it fast on llvmpipe: 36 px, batch 2 (at 32 px the stride-32 models end on 1×1
 * maps whose training-mode BatchNorm sees 2 values, where even PyTorch float32 is 50% off float64).
 *
 * @module
 */
import { registerParityTests } from "./parity_harness.ts";

registerParityTests({
  tag: "custom kernels",
  backend: "webgpu",
  kernels: "custom",
  size: 36,
  gradRatio: 100,
  statsTol: 1e-3,
});
