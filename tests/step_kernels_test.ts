/**
 * The training step's own kernels against float64 references computed here: the fused CutMix
 * cross-entropy (loss and logit gradient, both backends, λ from the step-scalar block) and the
 * metric accumulator (loss·weight and argmax hits, ties to the first maximum as tf.argMax).
 */
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";
import { tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { cutmixCrossEntropy, STEP_SCALARS } from "../kernels/mod.ts";
import { accumulateMetrics } from "../kernels/accumulate.ts";

/** Float64 loss and dLoss/dlogits of λ·CE_ε(y_a) + (1−λ)·CE_ε(y_b), batch mean (PyTorch's definition). */
function reference(x: number[][], ya: number[], yb: number[], lam: number, eps: number) {
  const B = x.length, C = x[0].length;
  let loss = 0;
  const grad = x.map((row, r) => {
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    const logp = row.map((v) => v - m - Math.log(z));
    const ce = (y: number) => -((1 - eps) * logp[y] + (eps / C) * logp.reduce((s, v) => s + v, 0));
    loss += (lam * ce(ya[r]) + (1 - lam) * ce(yb[r])) / B;
    return row.map((_, c) => {
      const t = eps / C + (c === ya[r] ? lam * (1 - eps) : 0) + (c === yb[r] ? (1 - lam) * (1 - eps) : 0);
      return (Math.exp(logp[c]) - t) / B;
    });
  });
  return { loss, grad };
}

for (const backend of ["webgpu", "cpu"] as const) {
  Deno.test(`fused CutMix cross-entropy (${backend}): loss and logit gradient equal the float64 reference`, async () => {
    await initRuntime({ backend });
    const rng = new Rng(3);
    const B = 67, C = 13, lam = 0.3125, eps = 0.05; // B > 64 rows: the workgroup loops and reduces
    const x = Array.from({ length: B }, () => Array.from({ length: C }, () => 4 * rng.normal()));
    const ya = Array.from({ length: B }, () => rng.int(0, C - 1));
    const yb = ya.map((y, i) => (i % 5 === 0 ? y : rng.int(0, C - 1))); // some rows with y_a = y_b
    const block = new Float32Array(STEP_SCALARS.length);
    block[STEP_SCALARS.lambda] = lam;
    const scalars = tf.tensor1d(block), logits = tf.tensor2d(x);
    const yA = tf.tensor1d(ya, "int32"), yB = tf.tensor1d(yb, "int32");
    const { value, grads } = tf.tidy(() =>
      tf.valueAndGrads((l: tf.Tensor) => cutmixCrossEntropy(l, yA, yB, scalars, eps))([logits])
    );
    const want = reference(x, ya, yb, lam, eps);
    assertEquals(value.shape, []);
    assertAlmostEquals((await value.data())[0], want.loss, 2e-6 * want.loss);
    const g = await grads[0].data();
    let worst = 0;
    want.grad.flat().forEach((w, i) => (worst = Math.max(worst, Math.abs(g[i] - w))));
    assert(worst < 1e-7, `gradient differs by ${worst}`);
    // The reference discriminates: swapping λ for 1 − λ moves the loss.
    assert(Math.abs(reference(x, ya, yb, 1 - lam, eps).loss - want.loss) > 1e-3);
    tf.dispose([value, ...grads, scalars, logits, yA, yB]);
  });

  Deno.test(`metric accumulator (${backend}): loss·weight and first-maximum argmax hits, in place`, async () => {
    await initRuntime({ backend });
    const B = 70, C = 4;
    const rng = new Rng(8);
    const x = Array.from({ length: B }, () => Array.from({ length: C }, () => rng.int(0, 2))); // many ties
    const labels = Array.from({ length: B }, () => rng.int(0, C - 1));
    let hits = 0;
    x.forEach((row, r) => (hits += row.indexOf(Math.max(...row)) === labels[r] ? 1 : 0));
    const acc = tf.variable(tf.tensor1d([1.5, 2]), false);
    const logits = tf.tensor2d(x), y = tf.tensor1d(labels, "int32"), loss = tf.scalar(0.75);
    accumulateMetrics(acc, loss, logits, y, 32);
    accumulateMetrics(acc, loss, logits, y, 32);
    const [l, n] = await acc.data();
    assertAlmostEquals(l, 1.5 + 2 * 0.75 * 32, 1e-5);
    assertEquals(n, 2 + 2 * hits);
    assert(hits > 0 && hits < B, `hits ${hits}`);
    tf.dispose([acc, logits, y, loss]);
  });
}
