/**
 * `deno task doctor`: what this machine runs xscore on — Deno and tfjs versions, the WebGPU
 * adapter and its limits, the tfjs backend — and one timed matmul checked against the CPU.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { runMain, UserError } from "../runtime/errors.ts";
import { parseCli } from "../runtime/cli.ts";

const MIB = 2 ** 20;

const USAGE = `usage: deno task doctor

Prints the Deno and tfjs versions, the WebGPU adapter and its limits, the tfjs backend, and one
timed 512x512 matmul checked against a float64 CPU product (exit 2 if they disagree).

options:
  --help`;

async function main(): Promise<void> {
  parseCli(Deno.args, { usage: USAGE, options: {} });
  const facts = await initRuntime();
  console.log(`deno          ${Deno.version.deno} (v8 ${Deno.version.v8})`);
  console.log(`tfjs-core     ${tf.version_core}`);
  console.log(`backend       ${tf.getBackend()}`);
  console.log(
    `adapter       ${facts.description} (vendor ${facts.vendor || "?"}, ` +
      `fallback/software: ${facts.isFallbackAdapter})`,
  );
  const l = facts.limits;
  console.log(
    `limits        maxStorageBufferBindingSize ${(l.maxStorageBufferBindingSize / MIB).toFixed(0)} MiB, ` +
      `maxBufferSize ${
        (l.maxBufferSize / MIB).toFixed(0)
      } MiB, workgroup storage ${l.maxComputeWorkgroupStorageSize} B, ` +
      `invocations/workgroup ${l.maxComputeInvocationsPerWorkgroup}, storage buffers/stage ${l.maxStorageBuffersPerShaderStage}`,
  );
  console.log(`features      ${facts.features.join(", ") || "(none)"}`);

  // Sanity: a 512x512 matmul on the GPU, timed (best of 5 rounds of 10, one readback per round
  // since each awaited sync costs ~11 ms in Deno), checked against a float64 CPU product.
  const n = 512;
  const a = new Float32Array(n * n).map((_, i) => Math.sin(i * 0.37));
  const b = new Float32Array(n * n).map((_, i) => Math.cos(i * 0.11));
  const ta = tf.tensor2d(a, [n, n]), tb = tf.tensor2d(b, [n, n]);
  const gpu = await tf.matMul(ta, tb).data();
  let maxErr = 0;
  for (const [i, j] of [[0, 0], [17, 401], [255, 3], [511, 511], [300, 299]]) {
    let s = 0;
    for (let k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
    maxErr = Math.max(maxErr, Math.abs(s - gpu[i * n + j]) / Math.max(1, Math.abs(s)));
  }
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    let y = tf.matMul(ta, tb);
    for (let r = 1; r < 10; r++) {
      const next = tf.matMul(y, tb);
      y.dispose();
      y = next;
    }
    await y.data();
    y.dispose();
    best = Math.min(best, (performance.now() - t0) / 10);
  }
  const gflops = (2 * n ** 3) / (best * 1e6);
  const ok = maxErr < 1e-3;
  console.log(
    `matmul ${n}    ${gflops.toFixed(1)} GFLOP/s (${best.toFixed(2)} ms), max rel. error vs CPU ` +
      `${maxErr.toExponential(1)} ${ok ? "OK" : "WRONG"}`,
  );
  if (!ok) {
    throw new UserError("the GPU matmul disagrees with the CPU: the WebGPU driver computes wrong results");
  }
}

if (import.meta.main) await runMain(main);
