/**
 * Fused Adam (PyTorch semantics) and the in-place plumbing it needs.
 *
 * A tfjs-webgpu program has one writable binding (its output), but an Adam step rewrites three
 * buffers (p, m, v). So this module records its own compute dispatches into tfjs's open compute pass
 * ({@link rawDispatch}), with read-write bindings on the variables' own buffers. Up to
 * {@link ADAM_MAX_SLOTS} variables share one dispatch; step-dependent scalars travel in a uniform
 * buffer from tfjs's pool, so a step creates no tensor and compiles no pipeline after the first.
 *
 * Writing a variable's buffer in place is only safe when no other tensor shares it (tfjs shares
 * data between a tensor and its reshapes/clones, and `tf.variable(t)` shares with `t`), so every
 * variable is first given a private buffer ({@link ensurePrivateGpuBuffer}), once.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";

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
// Raw dispatch plumbing (shared with kernels/batchnorm.ts)
// ---------------------------------------------------------------------------------------------

/** The parts of tfjs-backend-webgpu's private state that raw dispatches must cooperate with. */
interface BackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  uniformPendingDisposal: GPUBuffer[];
  activeTimers?: Array<{ name: string; query: Promise<number> }> | null;
  supportTimestampQuery: boolean;
  querySet: GPUQuerySet | null;
  querySetCount: number;
  getQueryTime(): Promise<number>;
  tensorMap: { get(dataId: object): { resource: unknown; refCount: number; values: unknown } | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  refCount(dataId: object): number;
}

function internals(backend: WebGPUBackend): BackendInternals {
  return backend as unknown as BackendInternals;
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** A compute pipeline for `code` (entry point `main`), compiled once per device and key. */
export function rawPipeline(backend: WebGPUBackend, key: string, code: () => string): GPUComputePipeline {
  const device = internals(backend).device;
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  let p = cache.get(key);
  if (!p) {
    p = device.createComputePipeline({
      label: key,
      layout: "auto",
      compute: { module: device.createShaderModule({ label: key, code: code() }), entryPoint: "main" },
    });
    cache.set(key, p);
  }
  return p;
}

/** The GPU buffer behind a tensor (uploaded first if its data still lives on the CPU side). */
export function gpuBufferOf(backend: WebGPUBackend, t: tf.TensorInfo): GPUBuffer {
  const be = internals(backend);
  be.uploadToGPU(t.dataId);
  const data = be.tensorMap.get(t.dataId);
  if (!data || !(data.resource instanceof GPUBuffer)) throw new Error("tensor has no GPU buffer");
  return data.resource;
}

/** One storage binding of a raw dispatch: a tensor (bound over its exact size) or a bare buffer. */
export type RawBinding = tf.TensorInfo | { gpuBuffer: GPUBuffer; size: number };

/**
 * Records one dispatch of `pipeline` into tfjs's command stream, in order with tfjs's own
 * programs: storage bindings 0..n-1 are `storage`, binding n is a uniform buffer holding
 * `uniforms` (from tfjs's pool, released after submit like tfjs's own uniforms). Tensors bound
 * here are marked as in use by the queue, so disposing them right after is safe.
 */
export function rawDispatch(
  backend: WebGPUBackend,
  pipeline: GPUComputePipeline,
  storage: RawBinding[],
  uniforms: ArrayBuffer,
  workgroups: number,
): void {
  const be = internals(backend);
  const entries: GPUBindGroupEntry[] = storage.map((s, i) => {
    if ("gpuBuffer" in s) return { binding: i, resource: { buffer: s.gpuBuffer, size: s.size } };
    be.commandQueueOwnedIds.add(s.dataId);
    const size = Math.max(4, 4 * s.shape.reduce((a, b) => a * b, 1));
    const buffer = gpuBufferOf(backend, s);
    // tfjs caches a tensor's values on the CPU after a read and trusts them forever (tensors are
    // immutable to it); a binding may be written here, so drop the cache.
    be.tensorMap.get(s.dataId)!.values = null;
    return { binding: i, resource: { buffer, size } };
  });
  const ubuf = be.bufferManager.acquireBuffer(
    uniforms.byteLength,
    GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM,
  );
  be.queue.writeBuffer(ubuf, 0, uniforms);
  be.uniformPendingDisposal.push(ubuf);
  entries.push({ binding: storage.length, resource: { buffer: ubuf, size: uniforms.byteLength } });
  const bindGroup = be.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  be.ensureCommandEncoderReady();
  const timed = be.activeTimers != null && be.supportTimestampQuery;
  if (timed) {
    // Under tf.profile: time this dispatch like tfjs times its programs (a pass with timestamps,
    // resolved when the profiler collects its timers), so raw kernels show up in the profile.
    be.endComputePassEncoder();
    be.querySet ??= be.device.createQuerySet({ type: "timestamp", count: be.querySetCount });
    be.computePassEncoder = be.commandEncoder!.beginComputePass({
      timestampWrites: { querySet: be.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  } else if (!be.computePassEncoder) {
    be.computePassEncoder = be.commandEncoder!.beginComputePass({});
  }
  be.computePassEncoder.setPipeline(pipeline);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  // Flat dispatches over 65535 workgroups fold into y; shaders recompute the linear id and bound-check.
  const x = Math.min(workgroups, 65535);
  be.computePassEncoder.dispatchWorkgroups(x, Math.ceil(workgroups / x), 1);
  be.dispatchCountInPass++;
  const batch = Number(tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE"));
  if (be.activeTimers != null || batch <= be.dispatchCountInPass) {
    be.endComputePassEncoder();
    // Under tf.profile tfjs submits when it resolves its timers; submitting here would break that.
    if (be.activeTimers == null) be.submitQueue();
    else if (timed) be.activeTimers.push({ name: pipeline.label, query: be.getQueryTime() });
  }
}

const privateIds = new WeakSet<object>();

/**
 * Makes sure `v`'s data is on the GPU in a buffer no other tensor shares (copying it once if
 * needed), so it can be written in place. Idempotent and cheap after the first call.
 */
export function ensurePrivateGpuBuffer(backend: WebGPUBackend, v: tf.Variable): void {
  if (privateIds.has(v.dataId) && internals(backend).refCount(v.dataId) === 1) return;
  if (internals(backend).refCount(v.dataId) !== 1) {
    // A fresh output is never shared; `assign` moves the variable onto it.
    const copy = tf.tidy(() => tf.add(v, tf.scalar(0)));
    v.assign(copy);
    copy.dispose();
  }
  internals(backend).uploadToGPU(v.dataId);
  privateIds.add(v.dataId);
}

/** Same on the CPU backend: a private values array that can be written in place. */
function ensurePrivateCpu(v: tf.Variable): void {
  const be = tf.backend() as unknown as { refCount(d: object): number };
  if (be.refCount(v.dataId) !== 1) {
    const copy = tf.tidy(() => tf.add(v, tf.scalar(0)));
    v.assign(copy);
    copy.dispose();
  }
}

/** Makes `v` writable in place on the active backend (webgpu or cpu). */
export function ensurePrivate(v: tf.Variable): void {
  if (tf.getBackend() === "webgpu") ensurePrivateGpuBuffer(tf.backend() as WebGPUBackend, v);
  else ensurePrivateCpu(v);
}

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
        let denom = sqrt(vn) / u.bc2Sqrt + u.eps;
        p${s}[i] = p${s}[i] - (mn / denom) * u.stepSize;
      }`);
  }
  return `
struct U {
  stepSize : f32,
  bc2Sqrt : f32,
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
  const device = internals(backend).device;
  if (!dummy || dummy.device !== device) {
    dummy = { device, buffer: device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }) };
  }
  return dummy.buffer;
}

/** Number of variables per fused dispatch the device's storage-binding limit allows. */
function slotsPerDispatch(backend: WebGPUBackend, flat: boolean): number {
  const limit = internals(backend).device.limits.maxStorageBuffersPerShaderStage;
  const k = flat ? Math.floor((limit - 2) / 2) : Math.floor(limit / 4);
  return Math.max(1, Math.min(ADAM_MAX_SLOTS, k));
}

/**
 * One Adam step (PyTorch `torch.optim.Adam`, no weight decay, no amsgrad) at step number `step`
 * (1 for the first step) and learning rate `lr`, updating `vars`, `m` and `v` in place:
 *
 *     m ← m + (g − m)(1−β1);  v ← β2·v + (1−β2)·g²;  p ← p − (lr/(1−β1^t)) · m / (√v/√(1−β2^t) + eps)
 *
 * `m`/`v` are either flat variables over all of `vars` in order (train/optimizer.ts `AdamState`)
 * or one variable per entry of `vars`. A missing gradient counts as zero (as `applyAdam` does).
 * On webgpu this is ⌈vars/8⌉ dispatches; on other backends a CPU fallback from stock ops.
 */
export function fusedAdamStep(
  vars: readonly tf.Variable[],
  grads: readonly (Tensor | undefined)[],
  m: tf.Variable | readonly tf.Variable[],
  v: tf.Variable | readonly tf.Variable[],
  step: number,
  lr: number,
  hyper: Partial<AdamHyper> = {},
): void {
  const h = { ...FUSED_ADAM_DEFAULTS, ...hyper };
  if (!(step >= 1)) throw new RangeError(`fusedAdamStep: step must be >= 1, got ${step}`);
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
  const bc1 = 1 - h.beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
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
    f.set([lr / bc1, bc2Sqrt, 1 - h.beta1, h.beta2, 1 - h.beta2, h.eps]);
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
    const groups = Math.ceil(first / WG);
    const rowWidth = Math.min(groups, 65535) * WG;
    new Uint32Array(u, 24, 2).set([first, rowWidth]);
    rawDispatch(backend, pipeline, storage, u, groups);
  }
}

/**
 * The same step from stock tfjs ops (the CPU fallback, and a reference for tests): in place
 * through `assign`, per variable.
 */
export function adamStepReference(
  vars: readonly tf.Variable[],
  grads: readonly (Tensor | undefined)[],
  m: tf.Variable | readonly tf.Variable[],
  v: tf.Variable | readonly tf.Variable[],
  step: number,
  lr: number,
  hyper: Partial<AdamHyper> = {},
): void {
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
