/**
 * Custom WGSL kernels (kernels/) against independent truths:
 * - plain-TypeScript float64 loops (depthwise forward / input grad / filter grad, SE forward) on
 *   tiny shapes, for every kernel shape and stride the zoo uses plus odd shapes;
 * - stock tfjs ops on the same WebGPU backend (tf.pad + tf.depthwiseConv2d, composed SE) and
 *   their tfjs gradients, on random data;
 * - central finite differences of a scalar loss (float64 accumulation of float32 outputs);
 * - the cpu-backend registration of the same kernels;
 * and checks that an input gradient with unrotated taps (the classic bug) FAILS the comparison.
 *
 * Tolerances (err = max |actual - expected|, scale = max(1, max |expected|)):
 * - forward and input grad vs float64 loops: err <= 2e-5 * scale (a handful of fp32 FMAs);
 * - filter grad and SE grads vs float64 loops or stock ops: err <= 1e-4 * scale (fp32 sums over
 *   B*H*W in a different order);
 * - finite differences (eps 1e-2): |fd - analytic| <= 1e-2 * |analytic| + 2e-3;
 * - broken kernel: err >= 0.1 * scale (it is off by O(1)).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { assertGpuHealthy, initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { zooKernelShapes } from "../models/inspect.ts";
import { dwGeometry } from "../kernels/depthwise.ts";
import { seShape } from "../kernels/se.ts";
import { matMulShape } from "../kernels/matmul.ts";
import {
  depthwiseConv2d,
  depthwiseConv2dBackpropFilter,
  depthwiseConv2dBackpropInput,
  type KernelChoice,
  type SeOptions,
  setKernelTuning,
  squeezeExcite,
} from "../kernels/mod.ts";

await initRuntime();

const opts = { sanitizeOps: false, sanitizeResources: false };

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}
const TOL_FWD = 2e-5;
const TOL_SUM = 1e-4;

type Shape4 = [number, number, number, number];

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

function maxErr(actual: ArrayLike<number>, expected: ArrayLike<number>): { err: number; scale: number } {
  assert(actual.length === expected.length, `length ${actual.length} != ${expected.length}`);
  let err = 0;
  let scale = 1;
  for (let i = 0; i < actual.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  if (Number.isNaN(err) || [...Array.from(actual)].some((v) => !Number.isFinite(v))) err = Infinity;
  return { err, scale };
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  const { err, scale } = maxErr(actual, expected);
  assert(err <= tol * scale, `${what}: max error ${err.toExponential(3)} > ${tol} * ${scale.toFixed(3)}`);
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  assertGpuHealthy();
  return d;
}

// ---------------------------------------------------------------------------------------------
// Float64 reference loops (NHWC, filter [kh,kw,C,1]).

interface Conv {
  shape: Shape4;
  k: [number, number];
  s: [number, number];
  p: [number, number];
}

function outDims(c: Conv): [number, number] {
  const [, H, W] = c.shape;
  return [
    Math.floor((H + 2 * c.p[0] - c.k[0]) / c.s[0]) + 1,
    Math.floor((W + 2 * c.p[1] - c.k[1]) / c.s[1]) + 1,
  ];
}

/**
 * Calls fn(yo, xo, t) for every in-bounds (output, tap) pair: yo and xo are the NHWC offsets of
 * channel 0 at the output and input pixel, t the tap index (kh * kw_size + kw).
 */
function forEachTap(c: Conv, fn: (yo: number, xo: number, t: number) => void) {
  const [B, H, W, C] = c.shape;
  const [Ho, Wo] = outDims(c);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        for (let kh = 0; kh < c.k[0]; kh++) {
          for (let kw = 0; kw < c.k[1]; kw++) {
            const ih = oh * c.s[0] - c.p[0] + kh;
            const iw = ow * c.s[1] - c.p[1] + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            fn(((b * Ho + oh) * Wo + ow) * C, ((b * H + ih) * W + iw) * C, kh * c.k[1] + kw);
          }
        }
      }
    }
  }
}

/** Normal random input, filter and output gradient for convolution `c`. */
function convData(rng: Rng, c: Conv) {
  const [Ho, Wo] = outDims(c);
  return {
    x: randn(rng, c.shape.reduce((a, b) => a * b)),
    f: randn(rng, c.k[0] * c.k[1] * c.shape[3]),
    dy: randn(rng, c.shape[0] * Ho * Wo * c.shape[3]),
  };
}

function refForward(c: Conv, x: Float32Array, f: Float32Array): Float64Array {
  const [Ho, Wo] = outDims(c);
  const C = c.shape[3];
  const y = new Float64Array(c.shape[0] * Ho * Wo * C);
  forEachTap(c, (yo, xo, t) => {
    for (let ch = 0; ch < C; ch++) y[yo + ch] += x[xo + ch] * f[t * C + ch];
  });
  return y;
}

function refInputGrad(c: Conv, dy: Float32Array, f: Float32Array): Float64Array {
  const C = c.shape[3];
  const dx = new Float64Array(c.shape[0] * c.shape[1] * c.shape[2] * C);
  forEachTap(c, (yo, xo, t) => {
    for (let ch = 0; ch < C; ch++) dx[xo + ch] += dy[yo + ch] * f[t * C + ch];
  });
  return dx;
}

function refFilterGrad(c: Conv, x: Float32Array, dy: Float32Array): Float64Array {
  const C = c.shape[3];
  const df = new Float64Array(c.k[0] * c.k[1] * C);
  forEachTap(c, (yo, xo, t) => {
    for (let ch = 0; ch < C; ch++) df[t * C + ch] += dy[yo + ch] * x[xo + ch];
  });
  return df;
}

interface SeData {
  x: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

function refSe(shape: Shape4, Cr: number, d: SeData, o: SeOptions): Float64Array {
  const [B, H, W, C] = shape;
  const HW = H * W;
  const y = new Float64Array(d.x.length);
  const act = (z: number) => (o.act === "relu" ? Math.max(z, 0) : z / (1 + Math.exp(-z)));
  const gate = (
    z: number,
  ) => (o.gate === "sigmoid" ? 1 / (1 + Math.exp(-z)) : Math.min(Math.max(z + 3, 0), 6) / 6);
  for (let b = 0; b < B; b++) {
    const s = new Float64Array(C);
    for (let i = 0; i < HW; i++) for (let c = 0; c < C; c++) s[c] += d.x[(b * HW + i) * C + c] / HW;
    const a = new Float64Array(Cr);
    for (let j = 0; j < Cr; j++) {
      let z = d.b1[j];
      for (let c = 0; c < C; c++) z += s[c] * d.w1[c * Cr + j];
      a[j] = act(z);
    }
    for (let c = 0; c < C; c++) {
      let z = d.b2[c];
      for (let j = 0; j < Cr; j++) z += a[j] * d.w2[j * C + c];
      const g = gate(z);
      for (let i = 0; i < HW; i++) y[(b * HW + i) * C + c] = d.x[(b * HW + i) * C + c] * g;
    }
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
// Depthwise cases: every kernel/stride of the zoo plus odd shapes and channel counts.

const K_ZOO: Array<[number, number]> = [[3, 3], [5, 5], [7, 7], [1, 5], [5, 1], [1, 1]];
const CHANNELS = [1, 3, 5, 17, 8, 12];

function zooCases(): Conv[] {
  const cases: Conv[] = [];
  let i = 0;
  for (const k of K_ZOO) {
    for (const s of [1, 2]) {
      const C = CHANNELS[i % CHANNELS.length];
      const B = i % 3 === 0 ? 1 : 2;
      const H = 7 + 2 * (i % 3); // odd: 7, 9, 11
      const W = 9 + 2 * ((i + 1) % 2); // odd: 9, 11
      cases.push({ shape: [B, H, W, C], k, s: [s, s], p: [Math.floor(k[0] / 2), Math.floor(k[1] / 2)] });
      i++;
    }
  }
  // Asymmetric strides, no padding, padding beyond k//2, even sizes with strided remainders.
  cases.push({ shape: [1, 8, 10, 4], k: [3, 3], s: [2, 1], p: [0, 1] });
  cases.push({ shape: [2, 6, 7, 3], k: [3, 3], s: [1, 2], p: [2, 0] });
  cases.push({ shape: [1, 10, 10, 16], k: [5, 5], s: [2, 2], p: [1, 1] });
  cases.push({ shape: [1, 3, 3, 4], k: [3, 3], s: [1, 1], p: [1, 1] });
  return cases;
}

const label = (c: Conv) => `x[${c.shape}] k${c.k.join("x")} s${c.s.join(",")} p${c.p.join(",")}`;
const convOpts = (c: Conv) => ({ strides: c.s, pad: c.p });

/** Forward, input grad and filter grad of `kernels` via tf.grads, as arrays. */
async function runConv(c: Conv, x: Float32Array, f: Float32Array, dy: Float32Array, kernels: KernelChoice) {
  const [Ho, Wo] = outDims(c);
  const xt = tf.tensor4d(x, c.shape);
  const ft = tf.tensor4d(f, [c.k[0], c.k[1], c.shape[3], 1]);
  const dyt = tf.tensor4d(dy, [c.shape[0], Ho, Wo, c.shape[3]]);
  const y = depthwiseConv2d(xt, ft, convOpts(c), kernels);
  const [dx, df] = tf.grads((a, b) =>
    depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, convOpts(c), kernels)
  )(
    [xt, ft],
    dyt,
  );
  const out = { y: await read(y), dx: await read(dx), df: await read(df) };
  tf.dispose([xt, ft, dyt, y, dx, df]);
  return out;
}

Deno.test({
  name: "depthwise: custom forward, input grad, filter grad match float64 loops and stock tfjs ops",
  ...opts,
  fn: async (t) => {
    const rng = new Rng(1);
    for (const c of zooCases()) {
      await t.step(label(c), async () => {
        const { x, f, dy } = convData(rng, c);
        const custom = await runConv(c, x, f, dy, "custom");
        assertClose(custom.y, refForward(c, x, f), TOL_FWD, "forward vs loops");
        assertClose(custom.dx, refInputGrad(c, dy, f), TOL_FWD, "input grad vs loops");
        assertClose(custom.df, refFilterGrad(c, x, dy), TOL_SUM, "filter grad vs loops");
        const stock = await runConv(c, x, f, dy, "stock");
        assertClose(custom.y, stock.y, TOL_FWD, "forward vs stock");
        assertClose(custom.dx, stock.dx, TOL_FWD, "input grad vs stock");
        assertClose(custom.df, stock.df, TOL_SUM, "filter grad vs stock");
      });
    }
  },
});

Deno.test({
  name: "depthwise: zoo-like shapes (vec4 path, split filter-grad reduction) match stock tfjs ops",
  ...opts,
  fn: async (t) => {
    const rng = new Rng(2);
    const cases: Conv[] = [
      { shape: [2, 28, 28, 32], k: [3, 3], s: [2, 2], p: [1, 1] },
      { shape: [2, 14, 14, 48], k: [5, 5], s: [1, 1], p: [2, 2] },
      { shape: [1, 15, 15, 24], k: [7, 7], s: [2, 2], p: [3, 3] },
    ];
    for (const c of cases) {
      await t.step(label(c), async () => {
        const { x, f, dy } = convData(rng, c);
        const custom = await runConv(c, x, f, dy, "custom");
        const stock = await runConv(c, x, f, dy, "stock");
        assertClose(custom.y, stock.y, TOL_FWD, "forward");
        assertClose(custom.dx, stock.dx, TOL_FWD, "input grad");
        assertClose(custom.df, stock.df, TOL_SUM, "filter grad");
      });
    }
  },
});

Deno.test({
  name: "depthwise: results do not depend on work-per-thread tuning (tiles, tails, reduction stages)",
  ...opts,
  fn: async () => {
    const rng = new Rng(3);
    const convs: Conv[] = [
      { shape: [2, 9, 11, 8], k: [3, 3], s: [2, 2], p: [1, 1] },
      { shape: [1, 9, 8, 5], k: [5, 5], s: [1, 1], p: [2, 2] },
    ];
    const patches = [
      {
        dwColsPerThread: 1,
        dwRowsPerThread: 1,
        dwFilterGradCols: 1,
        dwFilterGradTapRows: 1,
        reduceTargetThreads: 1,
      },
      {
        dwColsPerThread: 3,
        dwRowsPerThread: 3,
        dwFilterGradCols: 3,
        dwFilterGradTapRows: 2,
        workgroupSize: 32,
        reduceTargetThreads: 100000,
      },
      {
        dwColsPerThread: 16,
        dwRowsPerThread: 5,
        dwFilterGradCols: 8,
        dwFilterGradTapRows: 3,
        workgroupSize: 128,
        reduceMinRowsPerThread: 1,
        dwMaxUnrolledFma: 100000,
      },
      // The hardware-GPU defaults.
      {
        dwColsPerThread: 4,
        dwRowsPerThread: 1,
        dwFilterGradCols: 4,
        dwFilterGradTapRows: 1,
        reduceTargetThreads: 65536,
      },
    ];
    try {
      for (const c of convs) {
        const { x, f, dy } = convData(rng, c);
        const want = { y: refForward(c, x, f), dx: refInputGrad(c, dy, f), df: refFilterGrad(c, x, dy) };
        for (const patch of patches) {
          setKernelTuning(patch, true);
          const got = await runConv(c, x, f, dy, "custom");
          const tag = `${label(c)} ${JSON.stringify(patch)}`;
          assertClose(got.y, want.y, TOL_FWD, `forward ${tag}`);
          assertClose(got.dx, want.dx, TOL_FWD, `input grad ${tag}`);
          assertClose(got.df, want.df, TOL_SUM, `filter grad ${tag}`);
        }
      }
    } finally {
      setKernelTuning({}, true);
    }
  },
});

Deno.test({
  name: "kernels stay correct when a dispatch exceeds 65535 workgroups (tfjs folds it into a 2D grid)",
  ...opts,
  fn: async () => {
    const rng = new Rng(12);
    const c: Conv = { shape: [1, 66, 66, 64], k: [3, 3], s: [1, 1], p: [1, 1] };
    const x = randn(rng, c.shape.reduce((a, b) => a * b));
    const f = randn(rng, 9 * 64);
    const dy = randn(rng, x.length);
    const se: SeCase = { shape: [1, 66, 66, 64], Cr: 4, o: { act: "relu", gate: "sigmoid" } };
    const sd = seData(rng, se);
    try {
      // One thread per workgroup and per output vector: 66*66*16 = 69696 workgroups.
      setKernelTuning(
        { workgroupSize: 1, dwColsPerThread: 1, dwRowsPerThread: 1, sePixelsPerThread: 1 },
        true,
      );
      const got = await runConv(c, x, f, dy, "custom");
      assertClose(got.y, refForward(c, x, f), TOL_FWD, "forward");
      assertClose(got.dx, refInputGrad(c, dy, f), TOL_FWD, "input grad");
      assertClose(got.df, refFilterGrad(c, x, dy), TOL_SUM, "filter grad");
      const ts = seTensors(se, sd);
      const sdy = tf.tensor4d(dy, se.shape);
      const yc = seFn(se.o, "custom")(...(ts as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
      assertClose(await read(yc), refSe(se.shape, se.Cr, sd, se.o), TOL_FWD, "SE forward");
      const gc = tf.grads(seFn(se.o, "custom"))(ts, sdy);
      const gs = tf.grads(seFn(se.o, "stock"))(ts, sdy);
      for (let i = 0; i < 5; i++) {
        assertClose(await read(gc[i]), await read(gs[i]), TOL_SUM, `SE d${SE_PARAMS[i]}`);
      }
      tf.dispose([...ts, sdy, yc, ...gc, ...gs]);
    } finally {
      setKernelTuning({}, true);
    }
  },
});

Deno.test({
  name: "depthwise: fused bias forward and gradient",
  ...opts,
  fn: async () => {
    const rng = new Rng(4);
    for (const C of [8, 5]) {
      const c: Conv = { shape: [2, 7, 9, C], k: [3, 3], s: [1, 1], p: [1, 1] };
      const x = tf.tensor4d(randn(rng, 2 * 7 * 9 * C), c.shape);
      const f = tf.tensor4d(randn(rng, 9 * C), [3, 3, C, 1]);
      const bias = tf.tensor1d(randn(rng, C));
      const dy = tf.tensor4d(randn(rng, 2 * 7 * 9 * C), [2, 7, 9, C]);
      const run = (k: KernelChoice) =>
        tf.grads((a, b, bb) =>
          depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, { ...convOpts(c), bias: bb as tf.Tensor1D }, k)
        )([x, f, bias], dy);
      const yc = depthwiseConv2d(x, f, { ...convOpts(c), bias }, "custom");
      const ys = depthwiseConv2d(x, f, { ...convOpts(c), bias }, "stock");
      assertClose(await read(yc), await read(ys), TOL_FWD, `forward C=${C}`);
      const gc = run("custom");
      const gs = run("stock");
      for (let i = 0; i < 3; i++) {
        assertClose(await read(gc[i]), await read(gs[i]), TOL_SUM, `grad ${i} C=${C}`);
      }
      tf.dispose([x, f, bias, dy, yc, ys, ...gc, ...gs]);
    }
  },
});

Deno.test({
  name: "depthwise: an input grad with unrotated taps (the classic bug) fails the comparison",
  ...opts,
  fn: async () => {
    const rng = new Rng(5);
    for (
      const c of [
        { shape: [2, 9, 7, 8], k: [3, 3], s: [1, 1], p: [1, 1] },
        { shape: [1, 9, 9, 5], k: [1, 5], s: [2, 2], p: [0, 2] },
      ] as Conv[]
    ) {
      const [Ho, Wo] = outDims(c);
      const x = randn(rng, c.shape.reduce((a, b) => a * b));
      const f = randn(rng, c.k[0] * c.k[1] * c.shape[3]);
      const dy = randn(rng, c.shape[0] * Ho * Wo * c.shape[3]);
      const dyt = tf.tensor4d(dy, [c.shape[0], Ho, Wo, c.shape[3]]);
      const ft = tf.tensor4d(f, [c.k[0], c.k[1], c.shape[3], 1]);
      const good = depthwiseConv2dBackpropInput(dyt, ft, c.shape, convOpts(c));
      // The kernel rotates the filter by 180°; handing it a pre-rotated filter gives exactly the
      // result of a kernel that forgot the rotation.
      const bad = tf.tidy(() =>
        depthwiseConv2dBackpropInput(dyt, tf.reverse(ft, [0, 1]), c.shape, convOpts(c))
      );
      const want = refInputGrad(c, dy, f);
      assertClose(await read(good), want, TOL_FWD, "correct kernel");
      const { err, scale } = maxErr(await read(bad), want);
      assert(err >= 0.1 * scale, `broken kernel passed: error ${err} (${label(c)})`);
      // The filter-grad entry point is exercised directly as well.
      const df = depthwiseConv2dBackpropFilter(
        tf.tensor4d(x, c.shape),
        dyt,
        [c.k[0], c.k[1], c.shape[3], 1],
        convOpts(c),
      );
      assertClose(await read(df), refFilterGrad(c, x, dy), TOL_SUM, "filter grad entry point");
      tf.dispose([dyt, ft, good, bad, df]);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Finite differences.

/** Float64 sum(y * r) of a float32 output. */
async function lossOf(y: tf.Tensor, r: Float32Array): Promise<number> {
  const v = await read(y);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * r[i];
  return s;
}

/**
 * Checks d(sum(f(params) * r))/d(param) from tf.grads against central differences at `probes`
 * random coordinates of every parameter.
 */
async function checkFiniteDiff(
  name: string,
  params: Array<{ name: string; data: Float32Array; shape: number[] }>,
  f: (...ts: tf.Tensor[]) => tf.Tensor,
  rng: Rng,
  probes = 6,
  eps = 1e-2,
): Promise<void> {
  const tensors = params.map((p) => tf.tensor(p.data, p.shape));
  const y0 = f(...tensors);
  const r = randn(rng, y0.size);
  const rt = tf.tensor(r, y0.shape);
  const grads = tf.grads((...ts: tf.Tensor[]) => f(...ts))(tensors, rt);
  for (let pi = 0; pi < params.length; pi++) {
    const g = await read(grads[pi]);
    for (let k = 0; k < probes; k++) {
      const i = rng.int(0, params[pi].data.length - 1);
      const at = async (delta: number) => {
        const d = params[pi].data.slice();
        d[i] += delta;
        const ts = tensors.map((t, j) => (j === pi ? tf.tensor(d, params[pi].shape) : t));
        const y = f(...ts);
        const l = await lossOf(y, r);
        tf.dispose([y, ts[pi]]);
        return l;
      };
      const fd = (await at(eps) - await at(-eps)) / (2 * eps);
      const ok = Math.abs(fd - g[i]) <= 1e-2 * Math.abs(g[i]) + 2e-3;
      assert(ok, `${name}: d/d${params[pi].name}[${i}] analytic ${g[i]} vs finite difference ${fd}`);
    }
  }
  tf.dispose([...tensors, y0, rt, ...grads]);
}

Deno.test({
  name: "depthwise: custom gradients match central finite differences",
  ...opts,
  fn: async () => {
    const rng = new Rng(6);
    for (
      const c of [
        { shape: [1, 5, 6, 3], k: [3, 3], s: [2, 2], p: [1, 1] },
        { shape: [2, 5, 5, 4], k: [1, 5], s: [1, 1], p: [0, 2] },
      ] as Conv[]
    ) {
      await checkFiniteDiff(
        label(c),
        [
          { name: "x", data: randn(rng, c.shape.reduce((a, b) => a * b)), shape: c.shape },
          {
            name: "filter",
            data: randn(rng, c.k[0] * c.k[1] * c.shape[3]),
            shape: [c.k[0], c.k[1], c.shape[3], 1],
          },
        ],
        (x, f) => depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, convOpts(c), "custom"),
        rng,
      );
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Squeeze-and-Excitation.

interface SeCase {
  shape: Shape4;
  Cr: number;
  o: SeOptions;
}

const SE_CASES: SeCase[] = [
  { shape: [2, 5, 7, 8], Cr: 3, o: { act: "relu", gate: "sigmoid" } },
  { shape: [3, 4, 4, 5], Cr: 2, o: { act: "silu", gate: "hardsigmoid" } },
  { shape: [2, 7, 5, 12], Cr: 5, o: { act: "silu", gate: "sigmoid" } },
  { shape: [1, 9, 9, 3], Cr: 1, o: { act: "relu", gate: "hardsigmoid" } },
  { shape: [2, 30, 30, 16], Cr: 4, o: { act: "silu", gate: "sigmoid" } }, // split pooling
  { shape: [1, 2, 3, 8200], Cr: 8, o: { act: "relu", gate: "sigmoid" } }, // beyond workgroup memory: stock fallback
];

function seData(rng: Rng, c: SeCase): SeData {
  const C = c.shape[3];
  // Hidden biases of magnitude ~1 keep ReLU/hard-sigmoid kinks away from finite-difference probes.
  const b1 = randn(rng, c.Cr).map((v) => (v >= 0 ? 1 : -1) * (0.5 + Math.abs(v)));
  return {
    x: randn(rng, c.shape.reduce((a, b) => a * b)),
    w1: randn(rng, C * c.Cr, 0.3),
    b1,
    w2: randn(rng, c.Cr * C, 0.3),
    b2: randn(rng, C, 0.5),
  };
}

function seTensors(c: SeCase, d: SeData): tf.Tensor[] {
  const C = c.shape[3];
  return [
    tf.tensor4d(d.x, c.shape),
    tf.tensor2d(d.w1, [C, c.Cr]),
    tf.tensor1d(d.b1),
    tf.tensor2d(d.w2, [c.Cr, C]),
    tf.tensor1d(d.b2),
  ];
}

const seFn =
  (o: SeOptions, k: KernelChoice) =>
  (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) =>
    squeezeExcite(
      x as tf.Tensor4D,
      { w1: w1 as tf.Tensor2D, b1: b1 as tf.Tensor1D, w2: w2 as tf.Tensor2D, b2: b2 as tf.Tensor1D },
      o,
      k,
    );

const SE_PARAMS = ["x", "w1", "b1", "w2", "b2"];

Deno.test({
  name: "SE: custom forward and gradients (x, w1, b1, w2, b2) match float64 loops and stock tfjs ops",
  ...opts,
  fn: async (t) => {
    const rng = new Rng(7);
    for (const c of SE_CASES) {
      await t.step(`x[${c.shape}] Cr=${c.Cr} ${c.o.act}/${c.o.gate}`, async () => {
        const d = seData(rng, c);
        const ts = seTensors(c, d);
        const dy = tf.tensor4d(randn(rng, d.x.length), c.shape);
        const yc = seFn(c.o, "custom")(...(ts as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        const ys = seFn(c.o, "stock")(...(ts as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        assertClose(await read(yc), refSe(c.shape, c.Cr, d, c.o), TOL_FWD, "forward vs loops");
        assertClose(await read(yc), await read(ys), TOL_FWD, "forward vs stock");
        const gc = tf.grads(seFn(c.o, "custom"))(ts, dy);
        const gs = tf.grads(seFn(c.o, "stock"))(ts, dy);
        for (let i = 0; i < 5; i++) {
          assertClose(await read(gc[i]), await read(gs[i]), TOL_SUM, `d${SE_PARAMS[i]} vs stock`);
        }
        tf.dispose([...ts, dy, yc, ys, ...gc, ...gs]);
      });
    }
  },
});

Deno.test({
  name: "SE: results do not depend on work-per-thread tuning",
  ...opts,
  fn: async () => {
    const rng = new Rng(11);
    const c: SeCase = { shape: [5, 9, 7, 12], Cr: 3, o: { act: "silu", gate: "sigmoid" } };
    const d = seData(rng, c);
    const ts = seTensors(c, d);
    const dy = tf.tensor4d(randn(rng, d.x.length), c.shape);
    const gs = tf.grads(seFn(c.o, "stock"))(ts, dy);
    const want = [];
    for (const g of gs) want.push(await read(g));
    try {
      for (
        const patch of [
          { sePixelsPerThread: 1, seWorkgroupSize: 1, seImagesPerWorkgroup: 1, reduceTargetThreads: 1 },
          {
            sePixelsPerThread: 5,
            seWorkgroupSize: 256,
            seImagesPerWorkgroup: 2,
            reduceTargetThreads: 100000,
            reduceMinRowsPerThread: 1,
          },
          { sePixelsPerThread: 3, seWorkgroupSize: 7, seImagesPerWorkgroup: 3 },
          // The hardware-GPU defaults.
          { sePixelsPerThread: 4, seWorkgroupSize: 256, seImagesPerWorkgroup: 1, reduceTargetThreads: 65536 },
        ]
      ) {
        setKernelTuning(patch, true);
        const y = seFn(c.o, "custom")(...(ts as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        assertClose(await read(y), refSe(c.shape, c.Cr, d, c.o), TOL_FWD, `forward ${JSON.stringify(patch)}`);
        const gc = tf.grads(seFn(c.o, "custom"))(ts, dy);
        for (let i = 0; i < 5; i++) {
          assertClose(await read(gc[i]), want[i], TOL_SUM, `d${SE_PARAMS[i]} ${JSON.stringify(patch)}`);
        }
        tf.dispose([y, ...gc]);
      }
    } finally {
      setKernelTuning({}, true);
    }
    tf.dispose([...ts, dy, ...gs]);
  },
});

Deno.test({
  name: "SE: custom gradients match central finite differences (both gates, both activations)",
  ...opts,
  fn: async () => {
    const rng = new Rng(8);
    for (
      const c of [
        { shape: [2, 3, 4, 8], Cr: 3, o: { act: "silu", gate: "sigmoid" } },
        { shape: [2, 4, 3, 5], Cr: 2, o: { act: "relu", gate: "hardsigmoid" } },
      ] as SeCase[]
    ) {
      const d = seData(rng, c);
      const C = c.shape[3];
      await checkFiniteDiff(
        `SE ${c.o.act}/${c.o.gate}`,
        [
          { name: "x", data: d.x, shape: c.shape },
          { name: "w1", data: d.w1, shape: [C, c.Cr] },
          { name: "b1", data: d.b1, shape: [c.Cr] },
          { name: "w2", data: d.w2, shape: [c.Cr, C] },
          { name: "b2", data: d.b2, shape: [C] },
        ],
        (x, w1, b1, w2, b2) => seFn(c.o, "custom")(x, w1, b1, w2, b2),
        rng,
        4,
      );
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Training integration and the cpu registration.

/** A tiny depthwise + SE network trained for a few SGD steps; returns the final weights. */
async function trainSteps(kernels: KernelChoice, seed: number): Promise<Float32Array[]> {
  const rng = new Rng(seed);
  const C = 8;
  const filter = tf.variable(tf.tensor4d(randn(rng, 9 * C, 0.5), [3, 3, C, 1]));
  const w1 = tf.variable(tf.tensor2d(randn(rng, C * 2, 0.3), [C, 2]));
  const b1 = tf.variable(tf.tensor1d(randn(rng, 2)));
  const w2 = tf.variable(tf.tensor2d(randn(rng, 2 * C, 0.3), [2, C]));
  const b2 = tf.variable(tf.tensor1d(randn(rng, C, 0.5)));
  const x = tf.tensor4d(randn(rng, 2 * 6 * 6 * C), [2, 6, 6, C]);
  const target = tf.tensor4d(randn(rng, 2 * 3 * 3 * C), [2, 3, 3, C]);
  const opt = tf.train.sgd(0.1);
  const loss = () =>
    tf.tidy(() => {
      const h = depthwiseConv2d(
        x,
        filter as unknown as tf.Tensor4D,
        { strides: [2, 2], pad: [1, 1] },
        kernels,
      );
      const y = squeezeExcite(
        h,
        {
          w1: w1 as unknown as tf.Tensor2D,
          b1: b1 as unknown as tf.Tensor1D,
          w2: w2 as unknown as tf.Tensor2D,
          b2: b2 as unknown as tf.Tensor1D,
        },
        { act: "silu", gate: "hardsigmoid" },
        kernels,
      );
      return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
    });
  // variableGrads once, then optimizer steps.
  const { value, grads } = tf.variableGrads(loss);
  assert(Object.keys(grads).length === 5, "variableGrads returns a gradient per variable");
  tf.dispose([value, ...Object.values(grads)]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.dispose(opt.minimize(loss, true) ?? []);
  assert(
    tf.memory().numTensors === before,
    `training steps leak tensors (${before} -> ${tf.memory().numTensors})`,
  );
  const out = [];
  for (const v of [filter, w1, b1, w2, b2]) out.push(await read(v));
  tf.dispose([filter, w1, b1, w2, b2, x, target]);
  opt.dispose();
  return out;
}

Deno.test({
  name: "training: variableGrads and SGD steps agree between custom and stock kernels, without leaks",
  ...opts,
  fn: async () => {
    const custom = await trainSteps("custom", 9);
    const stock = await trainSteps("stock", 9);
    for (let i = 0; i < custom.length; i++) assertClose(custom[i], stock[i], TOL_SUM, `variable ${i}`);
  },
});

Deno.test({
  name: "cpu backend: the stock-op registrations of the custom kernels match the WebGPU kernels",
  ...opts,
  fn: async () => {
    const rng = new Rng(10);
    const c: Conv = { shape: [2, 7, 8, 5], k: [3, 3], s: [2, 2], p: [1, 1] };
    const [Ho, Wo] = outDims(c);
    const x = randn(rng, c.shape.reduce((a, b) => a * b));
    const f = randn(rng, 9 * 5);
    const dy = randn(rng, 2 * Ho * Wo * 5);
    const se: SeCase = { shape: [2, 4, 3, 6], Cr: 2, o: { act: "silu", gate: "hardsigmoid" } };
    const sd = seData(rng, se);
    const sdy = tf.tensor4d(randn(rng, sd.x.length), se.shape);
    const seGrads = async () => {
      const ts = seTensors(se, sd);
      const gs = tf.grads(seFn(se.o, "custom"))(ts, sdy);
      const out = [];
      for (const g of gs) out.push(await read(g));
      tf.dispose([...ts, ...gs]);
      return out;
    };
    const gpuConv = await runConv(c, x, f, dy, "custom");
    const gpuSe = await seGrads();
    const sdyData = await read(sdy);
    sdy.dispose();
    assert(await tf.setBackend("cpu"), "cpu backend available");
    try {
      const cpuConv = await runConv(c, x, f, dy, "custom");
      assertClose(cpuConv.y, gpuConv.y, TOL_FWD, "cpu forward");
      assertClose(cpuConv.dx, gpuConv.dx, TOL_FWD, "cpu input grad");
      assertClose(cpuConv.df, gpuConv.df, TOL_SUM, "cpu filter grad");
      const ts = seTensors(se, sd);
      const gs = tf.grads(seFn(se.o, "custom"))(ts, tf.tensor4d(sdyData, se.shape));
      for (let i = 0; i < 5; i++) {
        assertClose(await gs[i].data(), gpuSe[i], TOL_SUM, `cpu SE d${SE_PARAMS[i]}`);
      }
      tf.dispose([...ts, ...gs]);
    } finally {
      assert(await tf.setBackend("webgpu"), "back on webgpu");
    }
  },
});

Deno.test({
  name:
    "zoo: every depthwise/SE/1×1 shape of the registered models is supported and its kernel/stride is tested here",
  ...opts,
  fn: async () => {
    const zoo = await zooKernelShapes(224);
    assert(zoo.source === "registry", "shapes come from the model registry");
    const tested = new Set(zooCases().map((c) => `${c.k.join("x")} s${c.s.join(",")}`));
    for (const s of zoo.shapes) {
      if (s.kind === "dw") {
        const g = dwGeometry([2, s.H, s.W, s.C], [s.kernel[0], s.kernel[1], s.C, 1], s.strides, s.pad);
        assert(g.Ho >= 1 && g.Wo >= 1, `dw ${JSON.stringify(s)}`);
        const key = `${s.kernel.join("x")} s${s.strides.join(",")}`;
        assert(tested.has(key), `zoo depthwise ${key} (${s.models.join(", ")}) has no test case`);
      } else if (s.kind === "se") {
        seShape([2, s.H, s.W, s.C], [s.C, s.Cr], { act: s.act, gate: s.gate });
      } else {
        matMulShape([2 * s.H * s.W, s.C], [s.C, s.Cout], false, false);
      }
    }
    // MobileNetV2 at 224 px: 17 expansion/projection pairs + the 320→1280 head conv, in 1×1 convs.
    const mobilenetPw = zoo.shapes.filter((s) =>
      s.kind === "pw" && s.models.some((m) => m.startsWith("mobilenet"))
    );
    assert(
      mobilenetPw.some((s) => s.kind === "pw" && s.H === 7 && s.C === 320 && s.Cout === 1280),
      "head 1×1 conv",
    );
    const gates = new Set(zoo.shapes.flatMap((s) => (s.kind === "se" ? [s.gate] : [])));
    assert(gates.has("sigmoid") && gates.has("hardsigmoid"), "zoo uses both SE gates");
  },
});
