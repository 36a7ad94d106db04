/**
 * Fused Adam (PyTorch semantics).
 *
 * A tfjs-webgpu program has one writable binding (its output), but an Adam step rewrites three
 * buffers (p, m, v). So Adam is a raw dispatch (runtime/gpu.ts) with read-write bindings on the
 * variables' own buffers, each first given a private buffer ({@link ensurePrivateGpuBuffer}). Up to
 * {@link ADAM_MAX_SLOTS} variables share one dispatch. The step-dependent scalars (lr/(1−β1^t),
 * √(1−β2^t)) are read from the step-scalar block (kernels/step_scalars.ts), written once per step,
 * so the uniforms of every dispatch are constant and a recorded step replays unchanged.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import {
  deviceLimits,
  deviceOf,
  ensurePrivateGpuBuffer,
  isRecording,
  type RawBinding,
  rawDispatch,
  rawPipeline,
} from "../runtime/gpu.ts";
import { STEP_SCALARS } from "./step_scalars.ts";

/** Adam hyper-parameters (PyTorch defaults: β = (0.9, 0.999), eps = 1e-8). */
export interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
}

/** PyTorch's Adam defaults. */
export const FUSED_ADAM_DEFAULTS: AdamHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Most variables updated by one fused dispatch (each takes two storage bindings). */
export const ADAM_MAX_SLOTS = 8;

// ---------------------------------------------------------------------------------------------
// Fused Adam
// ---------------------------------------------------------------------------------------------

const WG = 64;

/**
 * WGSL for a dispatch over `k` variables. Slot s: p{s} (read-write), g{s} (read). Moments either
 * flat (one m, one v; each slot has an element offset) or per slot (m{s}, v{s}).
 * Per-slot table `slot[s]` = (first thread, element count, moment offset, has gradient).
 */
function adamShader(k: number, flat: boolean): string {
  const decls: string[] = [];
  let b = 0;
  for (let s = 0; s < k; s++) {
    decls.push(`@group(0) @binding(${b++}) var<storage, read_write> p${s} : array<f32>;`);
    decls.push(`@group(0) @binding(${b++}) var<storage, read> g${s} : array<f32>;`);
    if (!flat) {
      decls.push(`@group(0) @binding(${b++}) var<storage, read_write> m${s} : array<f32>;`);
      decls.push(`@group(0) @binding(${b++}) var<storage, read_write> v${s} : array<f32>;`);
    }
  }
  if (flat) {
    decls.push(`@group(0) @binding(${b++}) var<storage, read_write> m : array<f32>;`);
    decls.push(`@group(0) @binding(${b++}) var<storage, read_write> v : array<f32>;`);
  }
  decls.push(`@group(0) @binding(${b++}) var<storage, read> sc : array<f32>;`);
  const cases: string[] = [];
  for (let s = 0; s < k; s++) {
    const M = flat ? "m" : `m${s}`, V = flat ? "v" : `v${s}`;
    // Same operation order as train/optimizer.ts applyAdam (and torch.optim.Adam):
    // m += (g - m)(1-β1); v = v·β2 + g²(1-β2); p -= (m / (√v / √bc2 + eps)) · lr/bc1.
    cases.push(`case ${s}u: {
        let gi = select(0.0, g${s}[i], slot.w != 0u);
        let k = slot.z + i;
        let mo = ${M}[k];
        let mn = mo + (gi - mo) * u.oneMinusBeta1;
        let vn = ${V}[k] * u.beta2 + (gi * gi) * u.oneMinusBeta2;
        ${M}[k] = mn;
        ${V}[k] = vn;
        let denom = sqrt(vn) / sc[${STEP_SCALARS.adamBc2Sqrt}] + u.eps;
        p${s}[i] = p${s}[i] - (mn / denom) * sc[${STEP_SCALARS.adamStepSize}];
      }`);
  }
  return `
struct U {
  unused0 : f32,
  unused1 : f32,
  oneMinusBeta1 : f32,
  beta2 : f32,
  oneMinusBeta2 : f32,
  eps : f32,
  total : u32,
  rowWidth : u32,
  slots : array<vec4<u32>, ${k}>,
};
${decls.join("\n")}
@group(0) @binding(${b}) var<uniform> u : U;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let t = gid.y * u.rowWidth + gid.x;
  if (t >= u.total) { return; }
  var s = 0u;
  for (var j = 1u; j < ${k}u; j++) {
    if (t >= u.slots[j].x) { s = j; }
  }
  let slot = u.slots[s];
  let i = t - slot.x;
  switch s {
    ${cases.join("\n    ")}
    default: {}
  }
}`;
}

let dummy: { device: GPUDevice; buffer: GPUBuffer } | undefined;
function dummyBuffer(backend: WebGPUBackend): GPUBuffer {
  const device = deviceOf(backend);
  if (!dummy || dummy.device !== device) {
    dummy = { device, buffer: device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }) };
  }
  return dummy.buffer;
}

/** Number of variables per fused dispatch the device's storage-binding limit allows. */
function slotsPerDispatch(backend: WebGPUBackend, flat: boolean): number {
  const limit = deviceLimits(backend).maxStorageBuffersPerShaderStage - 1; // the step scalars
  const k = flat ? Math.floor((limit - 2) / 2) : Math.floor(limit / 4);
  return Math.max(1, Math.min(ADAM_MAX_SLOTS, k));
}

/**
 * What every Adam step takes: the variables, their gradients (a missing one counts as zero), the
 * first and second moments (flat over all variables, or one per variable), the step number (1 for
 * the first), the learning rate and optional hyper-parameters.
 */
export type AdamStepArgs = [
  vars: readonly tf.Variable[],
  grads: readonly (Tensor | undefined)[],
  m: tf.Variable | readonly tf.Variable[],
  v: tf.Variable | readonly tf.Variable[],
  step: number,
  lr: number,
  hyper?: Partial<AdamHyper>,
];

/**
 * One Adam step (PyTorch `torch.optim.Adam`, no weight decay, no amsgrad) at step number `step`
 * (1 for the first step) and learning rate `lr`, updating `vars`, `m` and `v` in place:
 *
 *     m ← m + (g − m)(1−β1);  v ← β2·v + (1−β2)·g²;  p ← p − (lr/(1−β1^t)) · m / (√v/√(1−β2^t) + eps)
 *
 * `m`/`v` are either flat variables over all of `vars` in order (train/optimizer.ts `AdamState`)
 * or one variable per entry of `vars`. A missing gradient counts as zero (as `applyAdam` does).
 * On webgpu this is ⌈vars/8⌉ dispatches; on other backends a CPU fallback from stock ops.
 *
 * `scalars`, when given, is the step-scalar block (kernels/step_scalars.ts) already holding this
 * step's {@link adamStepScalars}; the dispatches read them there (so their uniforms are the same
 * every step). Without it a block is made for this call.
 */
export function fusedAdamStep(
  ...[vars, grads, m, v, step, lr, hyper = {}, scalars]: [...AdamStepArgs, scalars?: Tensor]
): void {
  const h = { ...FUSED_ADAM_DEFAULTS, ...hyper };
  if (!(step >= 1)) throw new RangeError(`fusedAdamStep: step must be >= 1, got ${step}`);
  if (scalars && (h.beta1 !== FUSED_ADAM_DEFAULTS.beta1 || h.beta2 !== FUSED_ADAM_DEFAULTS.beta2)) {
    // The block's bias corrections (train/step.ts) are computed with the default betas.
    throw new Error("fusedAdamStep: a step-scalar block holds default-beta bias corrections; pass no block");
  }
  if (grads.length !== vars.length) {
    throw new Error(`fusedAdamStep: ${vars.length} variables but ${grads.length} gradients`);
  }
  const flat = !Array.isArray(m);
  const sizes = vars.map((p) => p.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (flat) {
    if ((m as tf.Variable).size !== total || (v as tf.Variable).size !== total) {
      throw new Error(`fusedAdamStep: flat moments must have ${total} elements`);
    }
  } else if ((m as tf.Variable[]).length !== vars.length || (v as tf.Variable[]).length !== vars.length) {
    throw new Error("fusedAdamStep: need one m and one v per variable");
  }
  vars.forEach((p, i) => {
    const g = grads[i];
    if (g && g.size !== p.size) {
      throw new Error(`fusedAdamStep: gradient ${i} has ${g.size} elements, not ${p.size}`);
    }
  });
  if (tf.getBackend() !== "webgpu") {
    adamStepReference(vars, grads, m, v, step, lr, h);
    return;
  }
  const backend = tf.backend() as WebGPUBackend;
  for (const p of vars) ensurePrivateGpuBuffer(backend, p);
  const moments = flat
    ? [m as tf.Variable, v as tf.Variable]
    : [...(m as tf.Variable[]), ...(v as tf.Variable[])];
  for (const t of moments) ensurePrivateGpuBuffer(backend, t);

  const k = slotsPerDispatch(backend, flat);
  let sc = scalars;
  if (!sc) {
    // A block uploaded here would be replayed as a constant: step 1's lr and bias correction forever.
    if (isRecording()) throw new Error("fusedAdamStep: a recorded step must pass its step-scalar block");
    const block = new Float32Array(STEP_SCALARS.length);
    const [stepSize, bc2Sqrt] = adamStepScalars(step, lr, h);
    block[STEP_SCALARS.adamStepSize] = stepSize;
    block[STEP_SCALARS.adamBc2Sqrt] = bc2Sqrt;
    sc = tf.tensor1d(block);
  }
  let offset = 0;
  for (let start = 0; start < vars.length; start += k) {
    const idx = [];
    for (let i = start; i < Math.min(start + k, vars.length); i++) if (sizes[i] > 0) idx.push(i);
    const moOffset0 = offset;
    for (let i = start; i < Math.min(start + k, vars.length); i++) offset += sizes[i];
    if (idx.length === 0) continue;
    const n = idx.length;
    const pipeline = rawPipeline(backend, `xsAdam_${n}_${flat}`, () => adamShader(n, flat));
    const storage: RawBinding[] = [];
    const u = new ArrayBuffer(32 + 16 * n);
    const f = new Float32Array(u, 0, 6);
    f.set([0, 0, 1 - h.beta1, h.beta2, 1 - h.beta2, h.eps]);
    const slots = new Uint32Array(u, 32, 4 * n);
    let first = 0;
    idx.forEach((i, s) => {
      let mo = moOffset0;
      for (let j = start; j < i; j++) mo += sizes[j];
      const g = grads[i];
      slots.set([first, sizes[i], flat ? mo : 0, g ? 1 : 0], 4 * s);
      first += sizes[i];
      storage.push(vars[i], g ?? { gpuBuffer: dummyBuffer(backend), size: 16 });
      if (!flat) storage.push((m as tf.Variable[])[i], (v as tf.Variable[])[i]);
    });
    if (flat) storage.push(m as tf.Variable, v as tf.Variable);
    storage.push(sc);
    const groups = Math.ceil(first / WG);
    const rowWidth = Math.min(groups, 65535) * WG;
    new Uint32Array(u, 24, 2).set([first, rowWidth]);
    rawDispatch(backend, pipeline, storage, u, groups);
  }
  if (sc !== scalars) sc.dispose();
}

/** This step's (lr/(1−β1^t), √(1−β2^t)), computed in float64 as PyTorch does. */
export function adamStepScalars(step: number, lr: number, hyper: Partial<AdamHyper> = {}): [number, number] {
  const h = { ...FUSED_ADAM_DEFAULTS, ...hyper };
  return [lr / (1 - h.beta1 ** step), Math.sqrt(1 - h.beta2 ** step)];
}

/**
 * The same step from stock tfjs ops (the CPU fallback, and a reference for tests): in place
 * through `assign`, per variable.
 */
export function adamStepReference(...[vars, grads, m, v, step, lr, hyper = {}]: AdamStepArgs): void {
  const h = { ...FUSED_ADAM_DEFAULTS, ...hyper };
  const bc1 = 1 - h.beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
  const flat = !Array.isArray(m);
  tf.tidy(() => {
    let offset = 0;
    const newM: Tensor[] = [], newV: Tensor[] = [];
    vars.forEach((p, i) => {
      const n = p.size;
      const g = grads[i] ? tf.reshape(grads[i]!, [-1]) : tf.zeros([n]);
      const mi = flat ? tf.slice(m as tf.Variable, offset, n) : tf.reshape((m as tf.Variable[])[i], [-1]);
      const vi = flat ? tf.slice(v as tf.Variable, offset, n) : tf.reshape((v as tf.Variable[])[i], [-1]);
      const mn = tf.add(mi, tf.mul(tf.sub(g, mi), 1 - h.beta1));
      const vn = tf.add(tf.mul(vi, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
      const denom = tf.add(tf.div(tf.sqrt(vn), bc2Sqrt), h.eps);
      p.assign(tf.reshape(tf.sub(tf.reshape(p, [-1]), tf.mul(tf.div(mn, denom), lr / bc1)), p.shape));
      if (flat) {
        newM.push(mn);
        newV.push(vn);
      } else {
        (m as tf.Variable[])[i].assign(tf.reshape(mn, (m as tf.Variable[])[i].shape));
        (v as tf.Variable[])[i].assign(tf.reshape(vn, (v as tf.Variable[])[i].shape));
      }
      offset += n;
    });
    if (flat && newM.length) {
      (m as tf.Variable).assign(tf.concat(newM));
      (v as tf.Variable).assign(tf.concat(newV));
    }
  });
}
