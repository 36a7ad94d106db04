/**
 * Family-specific checks of ConvMixer, ConvNeXt, MobileViT, ShuffleNet and StarNet (the generic
 * zoo checks — param counts, forward, gradients, Adam, eval independence — are in models_test.ts).
 * Truths: docs/protocol.md §4.2–4.4 numbers, the reference code's structure written out by hand
 * (state_dict keys, PyTorch's token order), and a plain-JS transformer layer.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import { type Tensor, tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { UserError } from "../runtime/errors.ts";
import { countModel, type Ctx, MetaTensor, type Module, Params } from "../models/core.ts";
import { ConvMixer, CONVMIXER_PATCH_SIZES, convmixerSpec } from "../models/convmixer.ts";
import { CONVNEXT_LAYER_SCALE_INIT, convnextSpec } from "../models/convnext.ts";
import { fromTokens, mobilevitSpec, paperParamCount, toTokens } from "../models/mobilevit.ts";
import { shufflenetSpec, ShuffleUnit } from "../models/shufflenet.ts";
import { starnetSpec } from "../models/starnet.ts";
import { TransformerEncoder, TransformerEncoderLayer } from "../models/transformer.ts";
import { formatTable, modelRows } from "../tasks/models.ts";
import { buildModel, type ModelSpec } from "../models/registry.ts";

const SPECS: Record<string, ModelSpec> = {
  convmixer: convmixerSpec,
  convnext: convnextSpec,
  mobilevit: mobilevitSpec,
  shufflenet: shufflenetSpec,
  starnet: starnetSpec,
};

function evalCtx(seed = 0): Ctx {
  return { training: false, rng: new Rng(seed), kernels: "stock" };
}

function counts(id: string, imageSize: number, extra: Record<string, unknown> = {}, numClasses = 10) {
  const spec = SPECS[id];
  return countModel((p) => spec.build(p, { ...spec.defaults, numClasses, imageSize, ...extra }), imageSize);
}

function metaParams(id: string, extra: Record<string, unknown> = {}): Params {
  const p = new Params(0, true);
  SPECS[id].build(p, { ...SPECS[id].defaults, numClasses: 10, imageSize: 224, ...extra });
  return p;
}

async function values(p: Params, name: string): Promise<Float32Array> {
  const e = p.entries.find((x) => x.name === name);
  assert(e?.variable, `no variable ${name}`);
  return (await e.variable.data()) as Float32Array;
}

function std(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return Math.sqrt(s / v.length);
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

// Runs before anything initialises a backend: the counting path must never touch WebGPU.
Deno.test("deno task models: every row counted in meta mode without initialising any tfjs backend", () => {
  const rows = modelRows(10, 224);
  assertEquals(tf.engine().backendName, undefined, "a tfjs backend was initialised");
  const mvit = rows.find((r) => r.model === "mobilevit")!;
  assertEquals([mvit.params, mvit.paperAccountingParams], [4_667_562, 2_811_690]);
  const mixers = rows.filter((r) => r.model === "convmixer").map((r) => [r.variant, r.params]);
  assertEquals(mixers, [["patchSize=7", 2_306_058], ["patchSize=5", 2_269_194], ["patchSize=14", 2_531_850]]);
  for (const r of rows.filter((r) => r.table1 && r.model in SPECS)) {
    assert(
      Math.abs(r.fvFlopsM - r.table1!.flopsM) <= 1,
      `${r.model}: ${r.fvFlopsM} vs Table 1 ${r.table1!.flopsM}`,
    );
  }
  const text = formatTable(rows, 10, 224);
  assert(text.includes("2,811,690") && text.includes("†"), text);
});

Deno.test({
  name:
    "deno task models CLI: --json at 100 classes, bad flags exit 2 with one line and the usage (needs --allow-run=deno)",
  ignore: Deno.permissions.querySync({ name: "run", command: "deno" }).state !== "granted",
  async fn() {
    const run = (...args: string[]) =>
      new Deno.Command("deno", {
        args: ["run", "--allow-read=.", "tasks/models.ts", ...args],
        cwd: new URL("..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await run("--json", "--classes", "100", "--image-size", "160");
    assertEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
    const out = JSON.parse(new TextDecoder().decode(ok.stdout));
    assertEquals([out.classes, out.imageSize], [100, 160]);
    const mvit = out.rows.find((r: { model: string }) => r.model === "mobilevit");
    assertEquals([mvit.params, mvit.paperAccountingParams], [4_713_732, 2_857_860]);
    assertAlmostEquals(mvit.fvFlopsM, 1072, 0.6);
    for (const args of [["--classes", "ten"], ["--image-size", "8"], ["--bogus"]]) {
      const bad = await run(...args);
      const err = new TextDecoder().decode(bad.stderr).trim();
      assertEquals(bad.code, 2, `${args}: ${err}`);
      // One line naming the bad flag or value, then the usage (runtime/cli.ts convention).
      const first = err.split("\n")[0];
      assert(first.startsWith("error: ") && first.includes(args[args.length - 1].replace(/^--/, "")), err);
      assert(!/\bat .*\.ts:\d+/.test(err), `stack trace: ${err}`);
    }
  },
});

Deno.test("ConvMixer: patch grid floor(H/P) for every patch size the scripts use", () => {
  // docs/protocol.md §4.2: P14@224 -> 16, P5@160 -> 32, P5@224 -> 44 (C100 run), P7@224 -> 32.
  const cases: [number, number, number][] = [[14, 224, 16], [5, 160, 32], [5, 224, 44], [7, 224, 32], [
    7,
    160,
    22,
  ]];
  for (const [patchSize, size, grid] of cases) {
    const net = new ConvMixer(new Params(0, true), { numClasses: 10, patchSize });
    const ctx = { ...evalCtx(), counts: { macs: 0, fvFlops: 0 } };
    const y = net.stem.apply(new MetaTensor([1, size, size, 3]) as unknown as Tensor, ctx);
    assertEquals(y.shape, [1, grid, grid, 512], `P${patchSize} @${size}`);
  }
  assertEquals([...CONVMIXER_PATCH_SIZES], [5, 7, 14]);
  assertThrows(() => counts("convmixer", 224, { patchSize: 4 }), UserError);
});

Deno.test("ConvMixer: params and fv-FLOPs of each script's variant (docs/protocol.md §4.3)", () => {
  const cases: [number, number, number, number][] = [
    // [P, image size, params (C=10), fv-FLOPs M]
    [7, 224, 2_306_058, 2347.8],
    [5, 160, 2_269_194, 2310],
    [5, 224, 2_269_194, 4367],
    [14, 224, 2_531_850, 645],
  ];
  for (const [patchSize, size, params, flops] of cases) {
    const c = counts("convmixer", size, { patchSize });
    assertEquals(c.params, params, `P${patchSize}`);
    assertAlmostEquals(c.fvFlops / 1e6, flops, 0.005 * flops, `P${patchSize} @${size}: ${c.fvFlops / 1e6}`);
  }
  // 3·512·P² + 512 + 1024 + 8·278,016 + 513·C at C = 100
  assertEquals(counts("convmixer", 224, {}, 100).params, 3 * 512 * 49 + 1536 + 8 * 278_016 + 513 * 100);
});

Deno.test("fv-FLOPs at 160 px match the per-dataset table (docs/protocol.md §4.4)", () => {
  const expected: Record<string, number> = { convnext: 113, mobilevit: 1072, shufflenet: 167, starnet: 217 };
  for (const [id, flops] of Object.entries(expected)) {
    const c = counts(id, 160);
    assertAlmostEquals(c.fvFlops / 1e6, flops, 0.6, `${id}: ${c.fvFlops / 1e6}`);
  }
});

Deno.test("MobileViT: MACs include the 386 M attention matmuls that fv-FLOPs leave out", () => {
  const c = counts("mobilevit", 224);
  assertAlmostEquals(c.fvFlops / 1e6, 2100.2, 0.1);
  // QKᵀ and AV: 2 · 2 layers · N² · d per block, N = 784/196/49, d = 144/192/240.
  const attention = [[784, 144], [196, 192], [49, 240]].reduce((s, [n, d]) => s + 4 * n * n * d, 0);
  assertAlmostEquals(attention / 1e6, 386, 0.5);
  assertAlmostEquals(c.macs / 1e6, 2065 + attention / 1e6, 1);
});

Deno.test("MobileViT: Table 1's 2.82 M is the count without the 6 encoder layers", () => {
  for (const [classes, total, paper] of [[10, 4_667_562, 2_811_690], [100, 4_713_732, 2_857_860]]) {
    const p = new Params(0, true);
    mobilevitSpec.build(p, { numClasses: classes, imageSize: 224 });
    assertEquals([p.countTrainable(), paperParamCount(p)], [total, paper]);
  }
  // 8d² + 11d per layer, two layers per block (docs/protocol.md §4.2).
  assertEquals(4_667_562 - 2_811_690, [144, 192, 240].reduce((s, d) => s + 2 * (8 * d * d + 11 * d), 0));
});

Deno.test("state_dict keys mirror the reference modules", () => {
  const shapes = (id: string) => new Map(metaParams(id).entries.map((e) => [e.name, e.shape]));
  const expect: Record<string, [string, number[]][]> = {
    convmixer: [
      ["stem.0.weight", [7, 7, 3, 512]],
      ["stem.0.bias", [512]],
      ["stem.2.running_var", [512]],
      ["blocks.7.depthwise.0.weight", [5, 5, 512, 1]],
      ["blocks.7.depthwise.2.weight", [512]],
      ["blocks.0.pointwise.0.bias", [512]],
      ["head.2.weight", [512, 10]],
    ],
    convnext: [
      ["downsample_layers.0.0.weight", [4, 4, 3, 32]],
      ["downsample_layers.0.1.weight", [32]],
      ["downsample_layers.3.0.bias", [128]],
      ["downsample_layers.3.1.weight", [2, 2, 128, 512]],
      ["stage_layers.3.blocks.0.block.0.weight", [7, 7, 512, 1]],
      ["stage_layers.3.blocks.0.block.2.weight", [512]],
      ["stage_layers.3.blocks.0.block.3.weight", [512, 2048]],
      ["stage_layers.3.blocks.0.block.5.bias", [512]],
      ["stage_layers.0.blocks.0.gamma", [32, 1, 1]],
      ["cls.0.weight", [512]],
      ["cls.1.weight", [512, 10]],
    ],
    mobilevit: [
      ["conv1.0.weight", [3, 3, 3, 32]],
      ["layer1.0.block.0.weight", [1, 1, 32, 128]],
      ["layer1.0.block.3.weight", [3, 3, 128, 1]],
      ["layer1.0.block.7.running_mean", [64]],
      ["layer3.1.local_conv.0.weight", [3, 3, 128, 128]],
      ["layer3.1.reduce_conv.1.weight", [144]],
      ["layer3.1.transformer.layers.1.self_attn.in_proj_weight", [144, 432]],
      ["layer3.1.transformer.layers.1.self_attn.in_proj_bias", [432]],
      ["layer4.1.transformer.layers.0.self_attn.out_proj.weight", [192, 192]],
      ["layer5.1.transformer.layers.1.linear1.weight", [240, 480]],
      ["layer5.1.transformer.layers.1.linear2.bias", [240]],
      ["layer5.1.transformer.layers.0.norm2.bias", [240]],
      ["layer5.1.expand_conv.0.weight", [1, 1, 240, 256]],
      ["conv_exp.1.running_var", [512]],
      ["fc.weight", [512, 10]],
    ],
    shufflenet: [
      ["conv1.0.weight", [3, 3, 3, 64]],
      ["conv1.1.weight", [64]],
      ["stage2.0.branch1.0.weight", [3, 3, 64, 1]],
      ["stage2.0.branch1.2.weight", [1, 1, 64, 96]],
      ["stage2.0.branch2.0.weight", [1, 1, 64, 96]],
      ["stage3.7.branch2.0.weight", [1, 1, 180, 180]],
      ["stage3.7.branch2.3.weight", [3, 3, 180, 1]],
      ["stage4.3.branch2.6.running_mean", [300]],
      ["conv5.0.weight", [1, 1, 600, 1024]],
      ["fc.bias", [10]],
    ],
    starnet: [
      ["stem.0.conv.weight", [3, 3, 3, 32]],
      ["stem.0.conv.bias", [32]],
      ["stem.0.bn.weight", [32]],
      ["stages.0.0.conv.weight", [3, 3, 32, 24]],
      ["stages.2.8.dwconv.conv.weight", [7, 7, 96, 1]],
      ["stages.2.8.f1.conv.weight", [1, 1, 96, 384]],
      ["stages.2.8.f2.conv.bias", [384]],
      ["stages.2.8.g.bn.running_var", [96]],
      ["stages.3.3.dwconv2.conv.bias", [192]],
      ["norm.weight", [192]],
      ["head.weight", [192, 10]],
    ],
  };
  for (const [id, keys] of Object.entries(expect)) {
    const got = shapes(id);
    for (const [name, shape] of keys) assertEquals(got.get(name), shape, `${id}: ${name}`);
  }
  // Modules the reference does not have must not appear.
  assert(!shapes("shufflenet").has("stage2.1.branch1.0.weight"), "basic units have no branch1");
  assert(!shapes("starnet").has("stages.0.1.f1.bn.weight"), "f1/f2 have no BN");
  assert(!shapes("starnet").has("stages.0.1.dwconv2.bn.weight"), "dwconv2 has no BN");
  assert(!shapes("mobilevit").has("layer3.1.transformer.norm.weight"), "the encoder has no final norm");
  // ConvMixer: 6 stem + 8 × 12 block + 2 head entries (state_dict minus num_batches_tracked).
  assertEquals(metaParams("convmixer").entries.length, 6 + 8 * 12 + 2);
});

Deno.test("ConvNeXt: layer-scale γ starts at 1e-6; LayerNorms at 1/0", async () => {
  await initRuntime();
  const p = new Params(3);
  convnextSpec.build(p, { numClasses: 10, imageSize: 32 });
  try {
    const gammas = p.entries.filter((e) => e.name.endsWith(".gamma"));
    assertEquals(gammas.map((e) => e.name), [0, 1, 2, 3].map((i) => `stage_layers.${i}.blocks.0.gamma`));
    for (const e of gammas) {
      for (const v of await values(p, e.name)) assertAlmostEquals(v, CONVNEXT_LAYER_SCALE_INIT, 1e-12);
    }
    for (const v of await values(p, "cls.0.weight")) assertEquals(v, 1);
    for (const v of await values(p, "downsample_layers.2.0.bias")) assertEquals(v, 0);
  } finally {
    p.dispose();
  }
});

Deno.test("StarNet: only the Linear head gets trunc_normal(0.02)/0; convs keep PyTorch defaults", async () => {
  await initRuntime();
  const p = new Params(5);
  starnetSpec.build(p, { numClasses: 100, imageSize: 32 });
  try {
    const head = await values(p, "head.weight"); // 19,200 samples
    assertAlmostEquals(std(head), 0.02, 0.001);
    assert(maxAbs(head) < 0.02 * 6);
    for (const v of await values(p, "head.bias")) assertEquals(v, 0);
    // PyTorch defaults: weight and bias U(±1/√fan_in) (std = bound/√3), far from std 0.02.
    const convs: [string, number][] = [["stem.0.conv", 27], ["stages.3.3.f1.conv", 192], [
      "stages.1.1.dwconv.conv",
      49,
    ]];
    for (const [name, fanIn] of convs) {
      const bound = 1 / Math.sqrt(fanIn);
      for (const suffix of ["weight", "bias"]) {
        const w = await values(p, `${name}.${suffix}`);
        assert(maxAbs(w) <= bound, `${name}.${suffix} within ±1/√fan_in`);
        if (w.length >= 1000) {
          assertAlmostEquals(std(w), bound / Math.sqrt(3), 0.1 * bound, `${name}.${suffix}`);
        } else assert(maxAbs(w) > 0.5 * bound, `${name}.${suffix} is drawn, not zero`);
      }
    }
    for (const v of await values(p, "stages.2.3.g.bn.weight")) assertEquals(v, 1);
    for (const v of await values(p, "norm.bias")) assertEquals(v, 0);
  } finally {
    p.dispose();
  }
});

Deno.test("MobileViT: both encoder layers of a block start identical (deep copy); PyTorch MHA init", async () => {
  await initRuntime();
  const p = new Params(11);
  mobilevitSpec.build(p, { numClasses: 10, imageSize: 32 });
  try {
    const suffixes = [
      "self_attn.in_proj_weight",
      "self_attn.in_proj_bias",
      "self_attn.out_proj.weight",
      "self_attn.out_proj.bias",
      "linear1.weight",
      "linear1.bias",
      "linear2.weight",
      "linear2.bias",
      "norm1.weight",
      "norm2.bias",
    ];
    for (const block of ["layer3.1", "layer4.1", "layer5.1"]) {
      for (const s of suffixes) {
        const a = await values(p, `${block}.transformer.layers.0.${s}`);
        const b = await values(p, `${block}.transformer.layers.1.${s}`);
        assertEquals(Array.from(b), Array.from(a), `${block} ${s}`);
      }
    }
    // Copies are separate variables: training one layer must not move the other.
    const l0 = p.entries.find((e) => e.name === "layer3.1.transformer.layers.0.linear1.weight")!.variable!;
    const l1 = p.entries.find((e) => e.name === "layer3.1.transformer.layers.1.linear1.weight")!.variable!;
    const zeros = tf.zerosLike(l0);
    l0.assign(zeros);
    zeros.dispose();
    assertEquals(maxAbs(await l0.data()), 0);
    assert(maxAbs(await l1.data()) > 0, "the copy kept its values");
    // Different blocks draw different values.
    const w3 = await values(p, "layer3.1.transformer.layers.0.linear1.bias");
    const w4 = await values(p, "layer4.1.transformer.layers.0.linear1.bias");
    assert(w3[0] !== w4[0]);
    // xavier_uniform on [3d, d]: U(±√(6/4d)); in-proj and out-proj biases zero; out-proj weight U(±1/√d).
    const d = 144, xavier = Math.sqrt(6 / (4 * d));
    const inW = await values(p, "layer3.1.transformer.layers.0.self_attn.in_proj_weight");
    assert(maxAbs(inW) <= xavier);
    assertAlmostEquals(std(inW), xavier / Math.sqrt(3), 0.03 * xavier);
    assertEquals(maxAbs(await values(p, "layer3.1.transformer.layers.0.self_attn.in_proj_bias")), 0);
    assertEquals(maxAbs(await values(p, "layer3.1.transformer.layers.0.self_attn.out_proj.bias")), 0);
    const outW = await values(p, "layer3.1.transformer.layers.0.self_attn.out_proj.weight");
    assert(maxAbs(outW) <= 1 / Math.sqrt(d));
    assertAlmostEquals(std(outW), 1 / Math.sqrt(3 * d), 0.05 / Math.sqrt(d));
  } finally {
    p.dispose();
  }
});

Deno.test("MobileViT: tokens in PyTorch's flatten(2).transpose(1, 2) order, and back", async () => {
  await initRuntime();
  const [b, c, h, w] = [2, 3, 2, 4];
  // An NCHW tensor as PyTorch holds it: value = unique id of (n, ch, y, x).
  const nchw = (n: number, ch: number, y: number, x: number) => 1000 * n + 100 * ch + 10 * y + x;
  // PyTorch: z.flatten(2) -> [B, C, H·W]; .transpose(1, 2) -> [B, H·W, C]; token t = y·W + x.
  const expected: number[] = [];
  for (let n = 0; n < b; n++) {
    for (let t = 0; t < h * w; t++) {
      for (let ch = 0; ch < c; ch++) expected.push(nchw(n, ch, Math.floor(t / w), t % w));
    }
  }
  // The same image in our NHWC layout.
  const nhwc: number[] = [];
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) nhwc.push(nchw(n, ch, y, x));
    }
  }
  const img = tf.tensor(nhwc, [b, h, w, c]);
  const tokens = toTokens(img);
  assertEquals(tokens.shape, [b, h * w, c]);
  assertEquals(Array.from(await tokens.data()), expected);
  const back = fromTokens(tokens, h, w);
  assertEquals(back.shape, [b, h, w, c]);
  assertEquals(Array.from(await back.data()), nhwc);
  tf.dispose([img, tokens, back]);
});

/** erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const y = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-a * a);
  return s * y;
}

/** One post-norm PyTorch TransformerEncoderLayer (eval), written out with loops. x: [N][d]. */
function referenceLayer(
  x: number[][],
  W: Record<string, Float32Array>,
  d: number,
  heads: number,
  ffn: number,
) {
  const lin = (v: number[], w: Float32Array, bias: Float32Array, nin: number, nout: number) => {
    const out: number[] = [];
    for (let j = 0; j < nout; j++) {
      let s = bias[j];
      for (let i = 0; i < nin; i++) s += v[i] * w[i * nout + j]; // stored [in, out]
      out.push(s);
    }
    return out;
  };
  const ln = (v: number[], g: Float32Array, bta: Float32Array) => {
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const va = v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
    return v.map((e, i) => ((e - m) / Math.sqrt(va + 1e-5)) * g[i] + bta[i]);
  };
  const n = x.length, hd = d / heads;
  const qkv = x.map((t) => lin(t, W.inW, W.inB, d, 3 * d));
  const att = x.map(() => new Array(d).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const s: number[] = [];
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let e = 0; e < hd; e++) dot += qkv[i][h * hd + e] * qkv[j][d + h * hd + e];
        s.push(dot / Math.sqrt(hd));
      }
      const mx = Math.max(...s), ex = s.map((v) => Math.exp(v - mx)), z = ex.reduce((a, b) => a + b, 0);
      for (let j = 0; j < n; j++) {
        for (let e = 0; e < hd; e++) att[i][h * hd + e] += (ex[j] / z) * qkv[j][2 * d + h * hd + e];
      }
    }
  }
  const h1 = x.map((t, i) => ln(t.map((v, k) => v + lin(att[i], W.outW, W.outB, d, d)[k]), W.g1, W.b1));
  return h1.map((t) => {
    const f = lin(t, W.w1, W.bb1, d, ffn).map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const y = lin(f, W.w2, W.bb2, ffn, d);
    return ln(t.map((v, k) => v + y[k]), W.g2, W.b2);
  });
}

Deno.test("Transformer encoder layer (post-norm MHA + GELU FFN) matches a plain-JS reference", async () => {
  await initRuntime();
  const [B, N, d, heads, ffn] = [2, 5, 8, 4, 16];
  const p = new Params(21);
  const layer = new TransformerEncoderLayer(p, "t", { dim: d, heads, ffnDim: ffn, dropout: 0.1 });
  try {
    // Random values everywhere (zero biases and unit norms would hide mistakes).
    const rng = new Rng(4);
    for (const e of p.entries) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      e.variable!.assign(tf.tensor(Array.from({ length: n }, () => rng.uniformIn(-0.5, 0.5)), e.shape));
    }
    const v = async (s: string) => await values(p, `t.${s}`);
    const W = {
      inW: await v("self_attn.in_proj_weight"),
      inB: await v("self_attn.in_proj_bias"),
      outW: await v("self_attn.out_proj.weight"),
      outB: await v("self_attn.out_proj.bias"),
      w1: await v("linear1.weight"),
      bb1: await v("linear1.bias"),
      w2: await v("linear2.weight"),
      bb2: await v("linear2.bias"),
      g1: await v("norm1.weight"),
      b1: await v("norm1.bias"),
      g2: await v("norm2.weight"),
      b2: await v("norm2.bias"),
    };
    const xs = Array.from({ length: B * N * d }, () => rng.uniformIn(-2, 2));
    const x = tf.tensor(xs, [B, N, d]);
    const y = layer.apply(x, evalCtx());
    assertEquals(y.shape, [B, N, d]);
    const got = await y.data();
    for (let b = 0; b < B; b++) {
      const tokens = Array.from({ length: N }, (_, i) => xs.slice((b * N + i) * d, (b * N + i + 1) * d));
      const ref = referenceLayer(tokens, W, d, heads, ffn).flat();
      for (let i = 0; i < ref.length; i++) {
        assertAlmostEquals(got[b * N * d + i], ref[i], 2e-4, `b${b} i${i}`);
      }
    }
    // Dropout 0.1 is active in training only, and draws from ctx.rng.
    const t1 = layer.apply(x, { ...evalCtx(1), training: true });
    const t2 = layer.apply(x, { ...evalCtx(2), training: true });
    const [a1, a2] = [await t1.data(), await t2.data()];
    assert(a1.some((e, i) => Math.abs(e - got[i]) > 1e-4), "training output differs from eval");
    assert(a1.some((e, i) => Math.abs(e - a2[i]) > 1e-4), "different rng, different dropout masks");
    tf.dispose([x, y, t1, t2]);
  } finally {
    p.dispose();
  }
});

Deno.test("TransformerEncoder: layers apply in sequence (2 identical layers = the layer twice)", async () => {
  await initRuntime();
  const p = new Params(8);
  const enc = new TransformerEncoder(p, "enc", 2, { dim: 8, heads: 4, ffnDim: 16, dropout: 0.1 });
  try {
    const x = tf.randomNormal([1, 3, 8], 0, 1, "float32", 3);
    const y = enc.apply(x, evalCtx());
    const twice = enc.layers[0].apply(enc.layers[0].apply(x, evalCtx()), evalCtx());
    const [a, b] = [await y.data(), await twice.data()];
    for (let i = 0; i < a.length; i++) assertAlmostEquals(a[i], b[i], 1e-5);
    tf.dispose([x, y, twice]);
  } finally {
    p.dispose();
  }
});

Deno.test("ShuffleNet: no channel shuffle — a basic unit passes its first half through unchanged", async () => {
  await initRuntime();
  const p = new Params(2);
  const basic = new ShuffleUnit(p, "u", 8, 8, 1);
  const down: Module = new ShuffleUnit(p, "d", 4, 8, 2);
  try {
    const x = tf.randomNormal([2, 4, 4, 8], 0, 1, "float32", 7);
    for (const training of [false, true]) {
      const y = basic.apply(x, { ...evalCtx(), training });
      assertEquals(y.shape, [2, 4, 4, 8]);
      const [yh, xh] = [
        tf.slice(y, [0, 0, 0, 0], [-1, -1, -1, 4]),
        tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 4]),
      ];
      assertEquals(Array.from(await yh.data()), Array.from(await xh.data()));
      const rest = tf.slice(y, [0, 0, 0, 4], [-1, -1, -1, 4]);
      assert((await rest.data()).every((v) => v >= 0), "branch2 ends with ReLU");
      tf.dispose([y, yh, xh, rest]);
    }
    const z = down.apply(tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 4]), evalCtx());
    assertEquals(z.shape, [2, 2, 2, 8]);
    tf.dispose([x, z]);
  } finally {
    p.dispose();
  }
});

/**
 * Eval logits of each model (seed 1, then every weight and BN statistic perturbed from Rng(9) so
 * that biases, running stats and the 1e-6 layer scale all matter) for a fixed input, as computed
 * by tests/models_reference.py: a float64 numpy transliteration of the reference PyTorch modules
 * (NCHW, state_dict names), fed with these weights. Regenerate: run this file with
 * XS_DUMP_REFERENCE=<dir> (and --allow-write), then `python3 tests/models_reference.py <dir>/*.json`.
 */
// deno-fmt-ignore
const REFERENCE_LOGITS: Record<
  string,
  { size: number; options?: Record<string, unknown>; logits: number[] }
> = {
  // GOLDEN-BEGIN
  convmixer: { size: 40, options: { patchSize: 7 }, logits: [-0.79847833, -1.1577632, 1.3983191, -1.2952789, -0.07689654, 1.8738634, 0.028825141, 1.2631849, -1.0769048, -0.94957447, -0.72319422, -1.1801679, 1.3326616, -1.1524475, -0.032788659, 2.0191077, 0.10548039, 1.2752805, -1.2339091, -1.0315925] },
  convnext: { size: 48, logits: [-1.4915414, -0.26514153, 1.4400758, 0.25653379, -1.1424184, -1.0540895, 0.91265759, -0.93303084, 0.36934621, 3.209398, -1.1267182, 1.314548, 1.8709685, 1.6409093, -0.062832048, 0.64566798, -1.0832232, -0.32355052, -0.53232358, 1.8490965] },
  mobilevit: { size: 48, logits: [0.1274472, -0.38627766, 0.19414066, -0.5139049, -0.44428402, -0.067616364, 1.1754278, -0.38493132, 0.38989081, -0.50839161, 0.1276112, -0.38147749, 0.19288762, -0.51458649, -0.44832313, -0.069145223, 1.1784901, -0.38866138, 0.3910862, -0.51249095] },
  shufflenet: { size: 48, logits: [-0.04671142, 0.2235948, -0.16745799, 0.36095761, -0.52025781, 0.20725243, 0.091967121, -0.47173038, -0.34075236, -0.001108963, -0.040637901, 0.19006261, -0.22305894, 0.32328975, -0.55203386, 0.22550837, 0.1232144, -0.43252441, -0.34655886, -0.0075594177] },
  starnet: { size: 48, logits: [0.59103682, -0.69997648, 1.5406026, -0.23428468, -0.48759525, -1.0783462, 0.83234766, -0.52514019, 0.59730894, -0.58023445, 1.1075845, 0.025543323, 1.0687207, -0.21801065, -0.37947916, -0.86233264, 0.76918615, -0.21533992, 0.2649415, -0.41254422] },
  // GOLDEN-END
};

/** The model and input of one {@link REFERENCE_LOGITS} case. */
async function referenceCase(id: string, size: number, options: Record<string, unknown> = {}) {
  const m = buildModel(id, { numClasses: 10, imageSize: size, seed: 1, ...options });
  const rng = new Rng(9);
  const draw = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => rng.uniformIn(lo, hi));
  const dump: Record<string, unknown> = {};
  for (const e of m.params.entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    let v: number[];
    if (e.name.endsWith("running_var")) v = draw(n, 0.5, 1.5);
    else if (e.name.endsWith("running_mean") || e.name.endsWith(".bias")) v = draw(n, -0.3, 0.3);
    else if (e.shape.length === 1 || /\.gamma$/.test(e.name)) v = draw(n, 0.5, 1.5); // BN/LN weights, ConvNeXt γ ([d,1,1])
    else v = Array.from(await e.variable!.data(), (w) => 1.7 * w); // the init's scale, a little larger
    const t = tf.tensor(v, e.shape);
    e.variable!.assign(t);
    t.dispose();
    dump[e.name] = { shape: e.shape, layout: e.layout, data: v };
  }
  const input = draw(2 * size * size * 3, -2, 2);
  return { m, input, dump };
}

for (const [id, c] of Object.entries(REFERENCE_LOGITS)) {
  Deno.test(`${id}: eval logits match the numpy transliteration of the reference PyTorch module`, async () => {
    await initRuntime();
    const { m, input, dump } = await referenceCase(id, c.size, c.options);
    try {
      const x = tf.tensor(input, [2, c.size, c.size, 3]);
      const y = m.apply(x, { training: false, rng: new Rng(0), kernels: "custom" });
      const got = Array.from(await y.data());
      const dir = Deno.env.get("XS_DUMP_REFERENCE");
      if (dir) {
        const out = { id, size: c.size, options: c.options ?? {}, input, output: got, params: dump };
        await Deno.writeTextFile(`${dir}/${id}.json`, JSON.stringify(out));
      }
      assertEquals(got.length, c.logits.length);
      const scale = maxAbs(c.logits);
      for (let i = 0; i < got.length; i++) {
        assertAlmostEquals(got[i], c.logits[i], 2e-5 * scale, `${id} logit ${i}`);
      }
      tf.dispose([x, y]);
    } finally {
      m.params.dispose();
    }
  });
}
