/**
 * PyTorch parity of the whole zoo on the tfjs CPU backend with the stock kernels, at 36 px (odd
 * sizes on the way down, 36 → 18 → 9 → 5 → 3 → 2, exercise PyTorch's floor and padding rules):
 * see tests/parity_harness.ts for what is compared, and TESTING.md for the measured table.
 * `XS_PARITY_ONLY=id,...`, `XS_PARITY_SIZE`, `XS_PARITY_REPORT=1` and `XS_PARITY_KEEP=1` help
 * when investigating one model.
 *
 * @module
 */
import { registerParityTests } from "./parity_harness.ts";

// FBNet on the CPU backend with stock ops: gradients 1.6e-2 off float64 in L2 (8% in blocks.3.1, a
// 5×5 depthwise block on a 3×3 map), 130× PyTorch float32's distance, while the WebGPU custom path
// is within 3.6e-4: an open finding of the stock CPU backward (TESTING.md), bounded here, not hidden.
registerParityTests({
  tag: "parity",
  backend: "cpu",
  kernels: "stock",
  size: 36,
  gradsGlobalFactor: { fbnet: 200 },
});
