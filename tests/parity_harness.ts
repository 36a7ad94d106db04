/**
 * The PyTorch parity harness of tests/parity_test.ts (tfjs CPU, stock kernels, 36 px) and
 * tests/custom_zoo_test.ts (WebGPU, custom kernels): for each of the 11 models, xscore's weights go
 * through the export of `weights.safetensors` (train/safetensors.ts `torchStateDict` +
 * `encodeSafetensors`), are loaded with `load_state_dict(strict=True)` into the reference PyTorch
 * network (torchvision / timm where they ship it, modules written from docs/protocol.md §4.2
 * otherwise: tests/parity_reference.py), and PyTorch, in float64, is the truth for
 * - eval-mode logits with non-trivial BatchNorm statistics and affine parameters (≤ 1e-4 relative),
 * - one training step: train-mode logits, the gradient of the cross-entropy with respect to every
 *   parameter, and the BatchNorm running statistics after it (dropout / stochastic depth off on
 *   both sides: their random draws cannot match across frameworks).
 *
 * All 11 models of one configuration run through one Python process. Without torch the tests are
 * ignored with the reason, unless `XS_REQUIRE_TORCH=1`, which makes them fail (CI sets it). The
 * measured table is in TESTING.md.
 */
import { assert } from "./assert.ts";
import "../models/zoo.ts";
import { buildModel } from "../models/registry.ts";
import { type Ctx, type KernelChoice, type Model, type ParamEntry } from "../models/core.ts";
import { encodeSafetensors, type StTensor, torchStateDict } from "../train/safetensors.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { type Tensor, tf } from "../runtime/tf.ts";
import { Rng } from "../runtime/rng.ts";
import { withBatchNormMomentumOne, withoutRandomness } from "./model_hooks.ts";
import { CANONICAL_MODELS } from "../score/xscore.ts";
import { PYTHON, pythonProbe, pythonTest, requireTorch } from "./cli.ts";

/** The 11 models of the paper (score/xscore.ts's fixed list, not the registry: an unregistered one fails here). */
export const PARITY_MODELS: readonly string[] = CANONICAL_MODELS;

const SCRIPT = new URL("./parity_reference.py", import.meta.url).pathname;
/** One configuration of the harness. */
export interface ParityConfig {
  /** Test-name prefix. */
  tag: string;
  backend: "cpu" | "webgpu";
  kernels: KernelChoice;
  /** Input size (square); `XS_PARITY_SIZE` overrides it. */
  size: number;
  /** Gradients: allowed multiple of max(1e-4, PyTorch float32's distance from float64) (default 10). */
  gradRatio?: number;
  /** BatchNorm running statistics after the step, relative (default 1e-4). */
  statsTol?: number;
  /** Per model: allowed multiple of PyTorch float32's L2 gradient distance instead of 10 (known gaps). */
  gradsGlobalFactor?: Record<string, number>;
}
const BATCH = 2;
/** Input scale of the second eval pass (see exportCase). */
const BIG = 16;
const CLASSES = 10;

/** Tolerances (relative to the largest reference value; float32 against float64). */
const LOGITS_TOL = 1e-4;
/**
 * Gradients, per tensor: within GRAD_RATIO × max(1e-4, PyTorch float32's own distance from float64)
 * by default. BatchNorms over few values (batch 2 at 3×3 maps) make single small tensors
 * ill-conditioned, and xscore and PyTorch sum in different orders, so one tensor can be far while
 * PyTorch float32 happens to be close (FBNet up to ~800× here); the L2 distance of all gradients
 * together is the tight check.
 */
const GRAD_RATIO = 1000;
/**
 * All gradients as one vector: relative L2 distance from float64 ≤ max(1e-3, 10 × PyTorch float32's
 * own distance); `gradsGlobalFactor` names per-model exceptions to the 10 (each one in TESTING.md).
 */
const GRADS_GLOBAL_TOL = 1e-3;
const STATS_TOL = 1e-4;

/** Why the reference cannot run here, or undefined when it can. */
const missing = await pythonProbe([SCRIPT, "--check"], "cannot import torch/torchvision/timm");
if (missing && !requireTorch) {
  console.warn(
    `parity_test: PyTorch reference unavailable (${missing}); ignoring. Install python3-torch ` +
      `python3-torchvision and timm, or set XS_REQUIRE_TORCH=1 to make this a failure.`,
  );
}

/** One model's distances from PyTorch, as tests/parity_reference.py prints them. */
export interface ParityResult {
  reference: string;
  params: number;
  logits_rel: number;
  /** max |logits(image 0) − logits(image 1)| / max |logits| in PyTorch: eval sees the input. */
  logits_spread: number;
  /** Eval logits of the same images scaled ×16. */
  logits_big_rel: number;
  /** PyTorch float32's distance from float64 on the ×16 images. */
  logits_big_f32: number;
  /** ‖all gradients − float64‖₂ / ‖float64‖₂. */
  grads_global: number;
  /** The same for PyTorch float32 (null when xscore was within the floors anyway). */
  grads_global_f32: number | null;
  train_logits_rel: number;
  /** PyTorch float32's distance from float64 (null when xscore was within 1e-3 / 1e-4 anyway). */
  train_logits_f32: number | null;
  grads_ratio: number;
  grads_ratio_worst: string;
  seconds: number;
  grads_rel: number;
  grads_worst: string;
  grads_checked: number;
  running_stats_rel: number;
  error?: string;
}

/**
 * Norm affine parameters (BatchNorm, LayerNorm) and layer scales (`stats` false), or the BN
 * running statistics (`stats` true: variance ×U(0.7, 1.4), mean moved by U(±0.2) standard
 * deviations), drawn away from their values, so that every term of eval and of the export is
 * non-trivial. Conv / Linear biases keep their initial values: a classifier bias moved by 0.25 would
 * outweigh MobileNetV2's N(0, 0.01) head and hide the features in the logits.
 */
function perturb(entries: readonly ParamEntry[], rng: Rng, stats: boolean): void {
  const layout = new Map(entries.map((e) => [e.name, e.layout]));
  const byName = new Map(entries.map((e) => [e.name, e]));
  for (const e of entries) {
    if (e.layout !== "plain") continue;
    const isStat = /running_(mean|var)$/.test(e.name);
    if (isStat !== stats) continue;
    const owner = e.name.replace(/(\.|_)bias$/, "$1weight");
    if (owner !== e.name && layout.get(owner) !== "plain") continue; // a conv / linear bias
    const v = e.variable!;
    const n = v.size;
    const r = (lo: number, hi: number) =>
      tf.tensor(Float32Array.from({ length: n }, () => rng.uniformIn(lo, hi)), v.shape);
    const next = tf.tidy(() => {
      if (e.name.endsWith("running_var")) return tf.mul(v, r(0.7, 1.4));
      if (e.name.endsWith("running_mean")) {
        const sd = tf.sqrt(byName.get(e.name.replace(/mean$/, "var"))!.variable!);
        return tf.add(v, tf.mul(sd, r(-0.2, 0.2)));
      }
      return tf.add(v, r(-0.25, 0.25));
    });
    v.assign(next);
    next.dispose();
  }
}

function st(t: Float32Array, shape: number[]): StTensor {
  return { dtype: "F32", shape, data: t };
}

/** Builds, exports and steps one model; writes `<id>.safetensors` and `<id>.io.safetensors`. */
async function exportCase(id: string, dir: string, cfg: ParityConfig): Promise<void> {
  const SIZE = cfg.size;
  const m: Model = buildModel(id, { numClasses: CLASSES, imageSize: SIZE, seed: 7 });
  try {
    const rng = new Rng(11);
    const ctx = (training: boolean): Ctx => ({ training, rng: new Rng(3), kernels: cfg.kernels });
    perturb(m.params.entries, rng, false);
    // Data-dependent running statistics (as training leaves them), then moved off them: with
    // arbitrary statistics a deep network's eval logits hardly depend on the input at all.
    const calib = tf.randomUniform([4, SIZE, SIZE, 3], -1, 1, "float32", 5);
    withoutRandomness(() => withBatchNormMomentumOne(() => tf.tidy(() => m.apply(calib, ctx(true)))));
    calib.dispose();
    perturb(m.params.entries, rng, true);
    const xv = Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => rng.uniformIn(-1, 1));
    const x = tf.tensor(xv, [BATCH, SIZE, SIZE, 3]);
    const logits = tf.tidy(() => m.apply(x, ctx(false)));
    // The same images ×BIG: pre-activations well past 6, so a bounded activation (ReLU6, hard
    // sigmoid) changed into an unbounded one shows in the logits.
    const big = tf.tidy(() => m.apply(tf.mul(x, BIG), ctx(false)));
    // Exactly what train/loop.ts writes as weights.safetensors (before the training step moves
    // the running statistics).
    await Deno.writeFile(
      `${dir}/${id}.safetensors`,
      encodeSafetensors(await torchStateDict(m.params.entries, 0), { format: "pt" }),
    );

    const labels = [3, 7];
    const y = tf.oneHot(tf.tensor1d(labels, "int32"), CLASSES);
    const vars = m.params.trainableVariables();
    let trainLogits: Tensor | undefined;
    const { grads } = withoutRandomness(() =>
      tf.variableGrads(() => {
        const out = m.apply(x, ctx(true));
        trainLogits = tf.keep(out);
        return tf.losses.softmaxCrossEntropy(y, out) as tf.Scalar;
      }, vars)
    );
    // Gradients and updated statistics through the same name / layout mapping as the weights.
    const gradEntries: ParamEntry[] = m.params.entries.filter((e) => e.trainable).map((e) => ({
      ...e,
      name: `grad.${e.name}`,
      variable: grads[e.variable!.name] as tf.Variable,
    }));
    const statEntries = m.params.entries.filter((e) => /running_(mean|var)$/.test(e.name)).map((e) => ({
      ...e,
      name: `after.${e.name}`,
    }));
    const io = new Map<string, StTensor>([
      ["__input__", st(xv, [BATCH, SIZE, SIZE, 3])],
      ["__labels__", st(Float32Array.from(labels), [BATCH])],
      ["__logits__", st((await logits.data()) as Float32Array, logits.shape)],
      ["__logits_big__", st((await big.data()) as Float32Array, big.shape)],
      ["__big__", st(Float32Array.of(BIG), [1])],
      ["__train_logits__", st((await trainLogits!.data()) as Float32Array, trainLogits!.shape)],
      ...(await torchStateDict(gradEntries, 0)),
      ...(await torchStateDict(statEntries, 1)),
    ]);
    await Deno.writeFile(`${dir}/${id}.io.safetensors`, encodeSafetensors(io));
    tf.dispose([x, logits, big, y, trainLogits!, ...Object.values(grads)]);
  } finally {
    m.params.dispose();
  }
}

/** Exports all 11 models, then runs the reference once over them. */
function parity(cfg: ParityConfig): Promise<Record<string, ParityResult>> {
  return (async () => {
    await initRuntime({ backend: cfg.backend });
    const dir = await Deno.makeTempDir({ prefix: "xscore-parity-" });
    try {
      const cases = [];
      const failed: Record<string, ParityResult> = {};
      const only = Deno.env.get("XS_PARITY_ONLY")?.split(",");
      for (const id of PARITY_MODELS.filter((m) => !only || only.includes(m))) {
        try {
          await exportCase(id, dir, cfg);
          cases.push({ id, numClasses: CLASSES });
        } catch (err) {
          // One model's failure (e.g. an unregistered id) must not hide the others' results.
          failed[id] = { error: `xscore side: ${(err as Error).message}` } as ParityResult;
        }
      }
      await Deno.writeTextFile(`${dir}/cases.json`, JSON.stringify(cases));
      const out = await new Deno.Command(PYTHON, { args: [SCRIPT, dir], stdout: "piped", stderr: "piped" })
        .output();
      const text = new TextDecoder().decode(out.stdout);
      assert(out.code === 0, `parity_reference.py failed:\n${new TextDecoder().decode(out.stderr)}`);
      const results = { ...JSON.parse(text), ...failed } as Record<string, ParityResult>;
      if (Deno.env.get("XS_PARITY_REPORT")) console.log(JSON.stringify(results, null, 1));
      return results;
    } finally {
      if (!Deno.env.get("XS_PARITY_KEEP")) await Deno.remove(dir, { recursive: true });
      else console.log(`parity files kept in ${dir}`);
    }
  })();
}

/** Registers one test per model for `cfg` (all 11 share one export + one Python run). */
export function registerParityTests(config: ParityConfig): void {
  const cfg = { ...config, size: Number(Deno.env.get("XS_PARITY_SIZE") ?? config.size) };
  let pending: Promise<Record<string, ParityResult>> | undefined;
  for (const id of PARITY_MODELS) {
    pythonTest({
      name:
        `${cfg.tag}: ${id} loads strictly into PyTorch; eval logits, gradients, BN stats match (float64 truth)`,
      missing,
      needs: "PyTorch reference",
      sanitizeResources: false,
    }, async () => {
      const r = (await (pending ??= parity(cfg)))[id];
      assert(r, `${id}: no result from parity_reference.py`);
      assert(!r.error, `${id}: ${r.error}`);
      const what = `${id} vs ${r.reference} (${cfg.backend}, ${cfg.kernels}, ${cfg.size} px)`;
      assert(
        r.logits_rel <= LOGITS_TOL,
        `${what}: eval logits differ by ${r.logits_rel.toExponential(2)} rel`,
      );
      assert(
        r.logits_spread > 0.01,
        `${what}: eval logits hardly depend on the input (${r.logits_spread})`,
      );
      const bigTol = Math.max(LOGITS_TOL, 10 * r.logits_big_f32);
      assert(
        r.logits_big_rel <= bigTol,
        `${what}: eval logits of the images ×${BIG} differ by ${r.logits_big_rel.toExponential(2)} rel`,
      );
      // Train mode: float64 truth, tolerance 1e-4 or 10x PyTorch float32's own distance from it.
      const trainTol = Math.max(LOGITS_TOL, 10 * (r.train_logits_f32 ?? 0));
      assert(
        r.train_logits_rel <= trainTol,
        `${what}: train logits differ by ${
          r.train_logits_rel.toExponential(2)
        } (PyTorch float32: ${r.train_logits_f32})`,
      );
      assert(r.grads_checked > 0, `${what}: no gradient compared`);
      const factor = cfg.gradsGlobalFactor?.[id] ?? 10;
      const globalTol = Math.max(GRADS_GLOBAL_TOL, factor * (r.grads_global_f32 ?? 0));
      assert(
        r.grads_global <= globalTol,
        `${what}: gradients ${
          r.grads_global.toExponential(2)
        } off in L2 (PyTorch float32: ${r.grads_global_f32})`,
      );
      assert(
        r.grads_ratio <= (cfg.gradRatio ?? GRAD_RATIO),
        `${what}: gradient of ${r.grads_ratio_worst} is ${
          r.grads_ratio.toFixed(1)
        }x further from float64 than ` +
          `max(1e-4, PyTorch float32) allows ${cfg.gradRatio ?? GRAD_RATIO}x (worst relative: ${
            r.grads_rel.toExponential(2)
          }, ${r.grads_worst})`,
      );
      assert(
        r.running_stats_rel <= (cfg.statsTol ?? STATS_TOL),
        `${what}: running stats differ by ${r.running_stats_rel}`,
      );
    });
  }
}
