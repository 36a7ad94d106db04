/**
 * The register-tiled matmul (kernels/matmul.ts) against independent truths:
 * - float64 loops, for all four transpose combinations, on odd shapes (edge tiles in M and N,
 *   M = N = K = 1) and on a long-K shape that takes the K-split + second-pass path;
 * - tfjs's stock BatchMatMul on the same backend and its gradients, on the shapes of 1×1 convs;
 * - central finite differences of a scalar loss through the registered gradient;
 * and a check that the comparison discriminates (a product with a wrongly transposed operand fails).
 *
 * Tolerances (err = max |actual − expected|, scale = max(1, max |expected|)): err ≤ 2e-6·K·scale
 * (float32 sums of K products in a different order); finite differences (eps 1e-2):
 * |fd − analytic| ≤ 1e-2·|analytic| + 2e-3.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { matMul, setKernelTuning } from "../kernels/mod.ts";
import { planMatMul } from "../kernels/matmul.ts";
import { type Ctx, ops } from "../models/core.ts";
import { assert } from "./assert.ts";

await initRuntime();
const opts = { sanitizeOps: false, sanitizeResources: false };

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** A product op(A)·op(B) of logical sizes M×K · K×N; tA/tB: the operand is stored transposed. */
interface Product {
  M: number;
  K: number;
  N: number;
  tA: boolean;
  tB: boolean;
}

/** op(A)·op(B) in float64; `a`, `b` row-major in their stored layouts. */
function matMulRef(a: Float32Array, b: Float32Array, { M, K, N, tA, tB }: Product): Float64Array {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[tA ? k * M + m : m * K + k] * b[tB ? n * K + k : k * N + n];
      c[m * N + n] = s;
    }
  }
  return c;
}

function maxErr(actual: ArrayLike<number>, expected: ArrayLike<number>): { err: number; scale: number } {
  assert(actual.length === expected.length, `length ${actual.length} != ${expected.length}`);
  let err = 0, scale = 1;
  for (let i = 0; i < actual.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return { err, scale };
}

const COMBOS: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];

/** Runs op(A)·op(B) for stored operands of logical sizes M, K, N through the custom kernel. */
async function custom(a: Float32Array, b: Float32Array, { M, K, N, tA, tB }: Product) {
  const ta = tf.tensor2d(a, tA ? [K, M] : [M, K]);
  const tb = tf.tensor2d(b, tB ? [N, K] : [K, N]);
  const c = matMul(ta, tb, tA, tB, "custom");
  assert(c.shape[0] === M && c.shape[1] === N, `shape [${c.shape}] != [${M},${N}]`);
  const data = await c.data();
  tf.dispose([ta, tb, c]);
  return data;
}

for (const tiles of [{ mmTileRows: 4, mmTileCols: 4 }, {}]) {
  const label = "mmTileRows" in tiles ? "4×4 tiles" : "default tiles";
  Deno.test({
    name: `matMul (${label}): all transpose combinations equal float64 loops on odd shapes`,
    ...opts,
    fn: async () => {
      setKernelTuning(tiles, true);
      try {
        const rng = new Rng(5);
        for (const [M, K, N] of [[37, 19, 13], [1, 1, 1], [17, 5, 33], [6, 300, 3]]) {
          for (const [tA, tB] of COMBOS) {
            const a = randn(rng, M * K), b = randn(rng, K * N);
            const { err, scale } = maxErr(
              await custom(a, b, { M, K, N, tA, tB }),
              matMulRef(a, b, { M, K, N, tA, tB }),
            );
            assert(
              err <= 2e-6 * K * scale,
              `[${M},${K},${N}] tA=${tA} tB=${tB}: err ${err} (scale ${scale})`,
            );
          }
        }
      } finally {
        setKernelTuning({}, true);
      }
    },
  });
}

Deno.test({
  name: "matMul: a long K is split across threads and summed in a second pass, to the same result",
  ...opts,
  fn: async () => {
    const [M, K, N] = [8, 2048, 12];
    const plan = planMatMul({ M, K, N });
    assert(plan.splits > 1, `expected a K split for [${M},${K},${N}], got ${JSON.stringify(plan)}`);
    const rng = new Rng(6);
    const a = randn(rng, K * M), b = randn(rng, K * N);
    // The weight-gradient form of a 1×1 conv: Xᵀ·dY with K = B·H·W.
    const { err, scale } = maxErr(
      await custom(a, b, { M, K, N, tA: true, tB: false }),
      matMulRef(a, b, { M, K, N, tA: true, tB: false }),
    );
    assert(err <= 2e-6 * K * scale, `err ${err} (scale ${scale})`);
  },
});

Deno.test({
  name: "matMul: forward and gradients equal stock BatchMatMul on 1×1-conv shapes",
  ...opts,
  fn: async () => {
    // [B·H·W, Cin] · [Cin, Cout] as in the zoo's 1×1 convs at 32 px (odd channel counts included).
    for (const [M, K, N] of [[2048, 24, 144], [512, 40, 240], [128, 320, 1280], [98, 58, 58]]) {
      for (const [tA, tB] of COMBOS) {
        const a = tf.randomNormal(tA ? [K, M] : [M, K], 0, 1, "float32", M + K);
        const b = tf.randomNormal(tB ? [N, K] : [K, N], 0, 1, "float32", N);
        const w = tf.randomNormal([M, N], 0, 1, "float32", 3);
        // The stock side transposes explicitly: tfjs-backend-webgpu 4.22's BatchMatMul with both
        // transpose flags returns wrong values once K is long (here K = 2048 in dB; error ≈ 1.5×
        // the result's scale), so the flags themselves are not a usable reference.
        const stockProduct = (x: tf.Tensor, y: tf.Tensor) =>
          tf.matMul(tA ? tf.transpose(x) : x, tB ? tf.transpose(y) : y);
        const customLoss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul(x, y, tA, tB, "custom"), w));
        const stockLoss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(stockProduct(x, y), w));
        const [ya, yb] = [matMul(a, b, tA, tB, "custom"), stockProduct(a, b)];
        const [ga, gb] = [tf.grads(customLoss)([a, b]), tf.grads(stockLoss)([a, b])];
        const pairs: Array<[string, tf.Tensor, tf.Tensor, number]> = [
          ["C", ya, yb, K],
          ["dA", ga[0], gb[0], N],
          ["dB", ga[1], gb[1], M],
        ];
        for (const [what, x, y, terms] of pairs) {
          assert(x.shape.join() === y.shape.join(), `${what}: shape [${x.shape}] != [${y.shape}]`);
          const { err, scale } = maxErr(await x.data(), await y.data());
          const where = `[${M},${K},${N}] tA=${tA} tB=${tB} ${what}`;
          assert(err <= 2e-6 * terms * scale, `${where}: err ${err} (scale ${scale})`);
        }
        tf.dispose([a, b, w, ya, yb, ...ga, ...gb]);
      }
    }
  },
});

Deno.test({
  name: "matMul: gradients match central finite differences",
  ...opts,
  fn: async () => {
    const rng = new Rng(9);
    const [M, K, N] = [3, 4, 5];
    for (const [tA, tB] of COMBOS) {
      const a = randn(rng, M * K), b = randn(rng, K * N), w = randn(rng, M * N);
      const aShape: [number, number] = tA ? [K, M] : [M, K];
      const bShape: [number, number] = tB ? [N, K] : [K, N];
      const lossOf = (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(matMul(x, y, tA, tB, "custom"), tf.tensor2d(w, [M, N])));
      const at = tf.tensor2d(a, aShape), bt = tf.tensor2d(b, bShape);
      const [da, db] = await Promise.all(tf.grads(lossOf)([at, bt]).map((g) => g.data()));
      const value = async (x: Float32Array, y: Float32Array) => {
        const l = lossOf(tf.tensor2d(x, aShape), tf.tensor2d(y, bShape));
        return (await l.data())[0];
      };
      const eps = 1e-2;
      for (const [which, data, analytic] of [["a", a, da], ["b", b, db]] as const) {
        for (let i = 0; i < data.length; i++) {
          const plus = Float32Array.from(data), minus = Float32Array.from(data);
          plus[i] += eps;
          minus[i] -= eps;
          const fd = which === "a"
            ? ((await value(plus, b)) - (await value(minus, b))) / (2 * eps)
            : ((await value(a, plus)) - (await value(a, minus))) / (2 * eps);
          const tol = 1e-2 * Math.abs(analytic[i]) + 2e-3;
          assert(
            Math.abs(fd - analytic[i]) <= tol,
            `tA=${tA} tB=${tB} d${which}[${i}]: fd ${fd} vs ${analytic[i]}`,
          );
        }
      }
      tf.dispose([at, bt]);
    }
  },
});

Deno.test({
  name: "matMul: the comparison discriminates (a wrongly transposed operand fails it)",
  ...opts,
  fn: async () => {
    const rng = new Rng(10);
    const [M, K, N] = [9, 7, 7];
    const a = randn(rng, M * K), b = randn(rng, K * N);
    const expected = matMulRef(a, b, { M, K, N, tA: false, tB: false });
    // Square B read as Bᵀ: same shapes, wrong product.
    const { err, scale } = maxErr(await custom(a, b, { M, K, N, tA: false, tB: true }), expected);
    assert(err >= 0.1 * scale, `a transposed B went unnoticed (err ${err}, scale ${scale})`);
  },
});

Deno.test({
  name:
    "patchify conv (kernel = stride, no padding) as one matmul equals the stock conv, forward and gradients",
  ...opts,
  fn: async () => {
    const ctx = (kernels: "custom" | "stock"): Ctx => ({ training: true, rng: new Rng(1), kernels });
    // ConvNeXt stem (k4), downsampling (k2, with an odd size that drops the last row/column, as
    // PyTorch does), ConvMixer patch embedding with bias (k7).
    const cases: Array<{ x: number[]; k: number; cout: number; bias: boolean }> = [
      { x: [2, 8, 8, 3], k: 4, cout: 5, bias: false },
      { x: [2, 9, 7, 6], k: 2, cout: 4, bias: true },
      { x: [1, 14, 14, 3], k: 7, cout: 8, bias: true },
    ];
    for (const c of cases) {
      const x = tf.randomNormal(c.x, 0, 1, "float32", 1);
      const w = tf.randomNormal([c.k, c.k, c.x[3], c.cout], 0, 0.3, "float32", 2);
      const bias = tf.randomNormal([c.cout], 0, 0.3, "float32", 3);
      const conv = (kernels: "custom" | "stock") => (...args: tf.Tensor[]) =>
        ops.conv2d(args[0], args[1], { stride: c.k, pad: 0, bias: args[2] }, ctx(kernels));
      const inputs = c.bias ? [x, w, bias] : [x, w];
      const [yc, ys] = [conv("custom")(...inputs), conv("stock")(...inputs)];
      assert(yc.shape.join() === ys.shape.join(), `shape [${yc.shape}] != [${ys.shape}]`);
      const dy = tf.randomNormal(ys.shape, 0, 1, "float32", 4);
      const gc = tf.grads(conv("custom"))(inputs, dy), gs = tf.grads(conv("stock"))(inputs, dy);
      const terms = c.k * c.k * c.x[3];
      const pairs: Array<[string, tf.Tensor, tf.Tensor]> = [
        ["y", yc, ys],
        ...gc.map((g, i) => [["dx", "dw", "db"][i], g, gs[i]] as [string, tf.Tensor, tf.Tensor]),
      ];
      for (const [what, a, b] of pairs) {
        const { err, scale } = maxErr(await a.data(), await b.data());
        assert(err <= 2e-6 * terms * scale, `k${c.k} [${c.x}] ${what}: err ${err} (scale ${scale})`);
      }
      tf.dispose([x, w, bias, yc, ys, dy, ...gc, ...gs]);
    }
  },
});
