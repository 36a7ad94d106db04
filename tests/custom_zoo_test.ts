/**
 * The custom-kernel path (WebGPU, custom WGSL kernels: depthwise, SE, fused BatchNorm+activation,
 * matmul, patchify convs) for all 11 models, checked against PyTorch in float64 by the parity
 * harness (tests/parity_harness.ts), with the tolerances of the stock path except the BatchNorm
 * running statistics (1e-3 instead of 1e-4): the custom kernels sum in other orders than PyTorch
 * (one-pass shifted BatchNorm moments, K-split matmuls); measured 2.2e-4 for MobileOne (TESTING.md).
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
  statsTol: 1e-3,
});
