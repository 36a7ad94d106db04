/**
 * The one GPU dispatch layer: every compute dispatch the project issues itself goes through here.
 *
 * - {@link runProgram}: a tfjs-webgpu program class (one writable output; tfjs manages the buffers).
 * - {@link rawDispatch}: a dispatch of our own pipeline with read-write bindings on existing buffers
 *   (in-place updates: fused Adam, BatchNorm running statistics, metric accumulators), recorded into
 *   tfjs's open compute pass so it stays in order with tfjs's programs.
 * - {@link recordCommands}: records everything one call issues (pipelines, bind groups, workgroup
 *   counts) into a {@link RecordedProgram} that replays it in one pass and one submit, with no bind
 *   group, buffer or uniform created (docs/recorded-step.md explains when that is valid).
 * - {@link gpuCallCounts}: counts of the WebGPU calls that cost host time (bind groups, buffers,
 *   buffer writes, passes, submits, dispatches), for `bench:step` and the tests.
 *
 * Static things are cached: pipelines per device and key, their bind-group layouts (Deno returns a
 * new layout object per `getBindGroupLayout` call), and uniform buffers by content (a raw dispatch
 * with the same uniform bytes reuses one buffer instead of writing a pooled one).
 *
 * @module
 */
import { tf, type WebGPUBackend } from "./tf.ts";

/** Program-defined uniform values of a tfjs program, in declaration order. */
export type ProgramUniforms = Array<{ type: "int32" | "float32" | "uint32"; data: number[] }>;

/** The parts of tfjs-backend-webgpu's private state that our dispatches cooperate with. */
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
  bufferManager: {
    acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
    releaseBuffer(buffer: GPUBuffer, reuse?: boolean): void;
  };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  refCount(dataId: object): number;
}

function internals(backend: WebGPUBackend): BackendInternals {
  return backend as unknown as BackendInternals;
}

/** The GPU device behind the backend. */
export function deviceOf(backend: WebGPUBackend): GPUDevice {
  return internals(backend).device;
}

const limitsCache = new WeakMap<GPUDevice, GPUSupportedLimits>();

/** The device's limits, read once (each `device.limits` read allocates a new object in Deno). */
export function deviceLimits(backend: WebGPUBackend): GPUSupportedLimits {
  const device = deviceOf(backend);
  let l = limitsCache.get(device);
  if (!l) limitsCache.set(device, l = device.limits);
  return l;
}

// ---------------------------------------------------------------------------------------------
// tfjs programs
// ---------------------------------------------------------------------------------------------

/** Runs a tfjs-webgpu program class and returns its output. */
export function runProgram(
  backend: WebGPUBackend,
  program: tf.webgpu.WebGPUProgram,
  inputs: tf.TensorInfo[],
  uniforms: ProgramUniforms,
  dtype: tf.DataType = "float32",
): tf.TensorInfo {
  return backend.runWebGPUProgram(program, inputs, dtype, uniforms);
}

/** Integer uniforms, in declaration order. */
export function ints(...values: number[]): ProgramUniforms {
  return values.map((v) => ({ type: "int32" as const, data: [v] }));
}

// ---------------------------------------------------------------------------------------------
// Raw dispatches
// ---------------------------------------------------------------------------------------------

interface PipelineEntry {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}
const pipelines = new WeakMap<GPUDevice, Map<string, PipelineEntry>>();
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();

/** A compute pipeline for `code` (entry point `main`), compiled once per device and key. */
export function rawPipeline(backend: WebGPUBackend, key: string, code: () => string): GPUComputePipeline {
  const device = deviceOf(backend);
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  let p = cache.get(key);
  if (!p) {
    const pipeline = device.createComputePipeline({
      label: key,
      layout: "auto",
      compute: { module: device.createShaderModule({ label: key, code: code() }), entryPoint: "main" },
    });
    p = { pipeline, layout: pipeline.getBindGroupLayout(0) };
    layouts.set(pipeline, p.layout);
    cache.set(key, p);
  }
  return p.pipeline;
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

const UNIFORM_CACHE_LIMIT = 8192;
const uniformCache = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();

/** A uniform buffer holding exactly `bytes`: one per distinct content, written once. */
function uniformBuffer(backend: WebGPUBackend, bytes: ArrayBuffer): GPUBuffer | undefined {
  const device = deviceOf(backend);
  let cache = uniformCache.get(device);
  if (!cache) uniformCache.set(device, cache = new Map());
  const words = new Uint32Array(bytes);
  let key = String(bytes.byteLength);
  for (let i = 0; i < words.length; i++) key += "," + words[i];
  let buf = cache.get(key);
  if (!buf) {
    if (cache.size >= UNIFORM_CACHE_LIMIT) return undefined;
    buf = device.createBuffer({
      size: bytes.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    internals(backend).queue.writeBuffer(buf, 0, bytes);
    cache.set(key, buf);
  }
  return buf;
}

/**
 * Records one dispatch of `pipeline` into tfjs's command stream, in order with tfjs's own
 * programs: storage bindings 0..n-1 are `storage`, binding n is a uniform buffer holding
 * `uniforms`. Tensors bound here are marked as in use by the queue, so disposing them right after
 * is safe; their CPU-side value caches are dropped because a binding may be written in place.
 * Workgroups over 65535 fold into y; shaders recompute the linear id and bound-check.
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
  let ubuf = uniformBuffer(backend, uniforms);
  if (!ubuf) {
    ubuf = be.bufferManager.acquireBuffer(
      uniforms.byteLength,
      GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM,
    );
    be.queue.writeBuffer(ubuf, 0, uniforms);
    be.uniformPendingDisposal.push(ubuf);
  }
  entries.push({ binding: storage.length, resource: { buffer: ubuf, size: uniforms.byteLength } });
  const layout = layouts.get(pipeline) ?? pipeline.getBindGroupLayout(0);
  const bindGroup = be.device.createBindGroup({ layout, entries });
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

/** Ends tfjs's open pass and submits its pending commands, if any. */
export function flushCommands(backend: WebGPUBackend): void {
  const be = internals(backend);
  if (be.commandEncoder) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
}

/** Writes `data` into the buffer behind tensor `t` (queue order: before the next submit). */
export function writeTensor(backend: WebGPUBackend, t: tf.TensorInfo, data: Float32Array<ArrayBuffer>): void {
  const be = internals(backend);
  const buffer = gpuBufferOf(backend, t);
  be.tensorMap.get(t.dataId)!.values = null;
  be.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
}

/** Copies `src`'s data into `dst`'s buffer (same byte size), in order with tfjs's commands. */
export function copyTensor(backend: WebGPUBackend, src: tf.TensorInfo, dst: tf.TensorInfo): void {
  const be = internals(backend);
  const s = gpuBufferOf(backend, src), d = gpuBufferOf(backend, dst);
  be.tensorMap.get(dst.dataId)!.values = null;
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.commandEncoder!.copyBufferToBuffer(s, 0, d, 0, tensorBytes(src));
}

/** Drops tfjs's CPU copy of `t`'s values (its buffer was written behind tfjs's back). */
export function invalidateCpuCopy(backend: WebGPUBackend, t: tf.TensorInfo): void {
  const data = internals(backend).tensorMap.get(t.dataId);
  if (data) data.values = null;
}

/**
 * For a recorded program's persistent tensors: true when each still sits in the buffer it was
 * recorded with (`buffers`, same order); also drops their CPU copies (the program writes them).
 */
export function sameBuffersAndInvalidate(
  backend: WebGPUBackend,
  tensors: readonly tf.TensorInfo[],
  buffers: readonly GPUBuffer[],
): boolean {
  const map = internals(backend).tensorMap;
  let same = tensors.length === buffers.length;
  for (let i = 0; i < tensors.length; i++) {
    const d = map.get(tensors[i].dataId);
    if (!d || d.resource !== buffers[i]) same = false;
    else d.values = null;
  }
  return same;
}

/** Bytes of a tensor's data (4 per element: float32, int32 and bool alike on WebGPU). */
export function tensorBytes(t: tf.TensorInfo): number {
  return 4 * t.shape.reduce((a, b) => a * b, 1);
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
// Call counters and the recorder (both hook the WebGPU prototypes once)
// ---------------------------------------------------------------------------------------------

/** Host-costly WebGPU calls, cumulative since the process started (see {@link gpuCallCounts}). */
export interface GpuCallCounts {
  dispatches: number;
  createBindGroup: number;
  createBuffer: number;
  writeBuffer: number;
  passes: number;
  submits: number;
}

const counts: GpuCallCounts = {
  dispatches: 0,
  createBindGroup: 0,
  createBuffer: 0,
  writeBuffer: 0,
  passes: 0,
  submits: 0,
};

/** Recording state while {@link recordCommands} runs. */
interface Recording {
  pipeline: GPUComputePipeline | null;
  bindGroup: GPUBindGroup | null;
  commands: Command[];
  /** Buffers each bind group made during the recording binds. */
  groupBuffers: Map<GPUBindGroup, GPUBuffer[]>;
  /** Buffers bound by a dispatch so far. */
  bound: Set<GPUBuffer>;
  /** Buffers created or taken from tfjs's pool during the recording. */
  fresh: Set<GPUBuffer>;
  /** Buffers tfjs released during the recording (kept out of its pool). */
  held: Set<GPUBuffer>;
  written: Set<GPUBuffer>;
  problems: string[];
}

type Command =
  | {
    kind: "dispatch";
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    x: number;
    y: number;
    z: number;
  }
  | { kind: "copy"; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

let recording: Recording | undefined;
let dropWork = false;
/** Buffers owned by live recorded programs: tfjs may release them but never hand them out again. */
const planOwned = new Set<GPUBuffer>();
/** Owned buffers tfjs has released (their tensors are gone): back to the pool when the program goes. */
const ownedReleased = new Set<GPUBuffer>();
/** tfjs's own `releaseBuffer` per buffer manager, for returning buffers to the pool. */
const poolRelease = new WeakMap<object, (buffer: GPUBuffer, reuse?: boolean) => void>();
let hooked = false;

/**
 * True while {@link recordCommands} records. Uploads made then are replayed as constants, so code
 * that uploads a per-step value must refuse to run inside a recording (it belongs in the step's
 * scalar block).
 */
export function isRecording(): boolean {
  return recording !== undefined;
}

function wrap<T extends object, K extends keyof T>(proto: T, name: K, make: (orig: T[K]) => T[K]): void {
  const orig = proto[name];
  proto[name] = make(orig);
}

/** Installs the counting/recording hooks on the WebGPU prototypes (idempotent). */
function installHooks(): void {
  if (hooked || typeof GPUDevice === "undefined") return;
  hooked = true;
  type Fn = (...a: unknown[]) => unknown;
  wrap(
    GPUDevice.prototype,
    "createBindGroup",
    (orig) =>
      function (this: GPUDevice, desc: GPUBindGroupDescriptor) {
        counts.createBindGroup++;
        const bg = (orig as Fn).call(this, desc) as GPUBindGroup;
        if (recording) {
          const bufs: GPUBuffer[] = [];
          for (const e of desc.entries) {
            const r = e.resource as GPUBufferBinding;
            if (r && (r as GPUBufferBinding).buffer instanceof GPUBuffer) bufs.push(r.buffer);
          }
          recording.groupBuffers.set(bg, bufs);
        }
        return bg;
      } as never,
  );
  wrap(GPUDevice.prototype, "createBuffer", (orig) =>
    function (this: GPUDevice, desc: GPUBufferDescriptor) {
      counts.createBuffer++;
      const b = (orig as Fn).call(this, desc) as GPUBuffer;
      recording?.fresh.add(b);
      return b;
    } as never);
  wrap(
    GPUQueue.prototype,
    "writeBuffer",
    (orig) =>
      function (this: GPUQueue, buffer: GPUBuffer, ...rest: unknown[]) {
        counts.writeBuffer++;
        if (recording) {
          if (!recording.fresh.has(buffer) || recording.bound.has(buffer) || recording.written.has(buffer)) {
            recording.problems.push(`a buffer write to "${buffer.label}" inside the step`);
          }
          recording.written.add(buffer);
        }
        return (orig as Fn).call(this, buffer, ...rest);
      } as never,
  );
  wrap(GPUQueue.prototype, "submit", (orig) =>
    function (this: GPUQueue, ...a: unknown[]) {
      counts.submits++;
      // Host-time measurement: the call is made, the work is dropped (see withoutGpuWork).
      return (orig as Fn).apply(this, dropWork ? [[]] : a);
    } as never);
  wrap(
    GPUCommandEncoder.prototype,
    "beginComputePass",
    (orig) =>
      function (this: GPUCommandEncoder, ...a: unknown[]) {
        counts.passes++;
        if (recording) recording.pipeline = recording.bindGroup = null;
        return (orig as Fn).apply(this, a);
      } as never,
  );
  wrap(
    GPUCommandEncoder.prototype,
    "copyBufferToBuffer",
    (orig) =>
      function (this: GPUCommandEncoder, ...a: unknown[]) {
        if (recording) {
          const [src, srcOffset, dst, dstOffset, size] = a as [GPUBuffer, number, GPUBuffer, number, number];
          // Uploads (from a mapped staging buffer into a fresh tensor buffer) hold constants: the
          // destination keeps its contents across replays, so they are not replayed.
          const upload = (src.usage & GPUBufferUsage.MAP_WRITE) !== 0 && recording.fresh.has(dst) &&
            !recording.bound.has(dst);
          if (!upload) recording.commands.push({ kind: "copy", src, srcOffset, dst, dstOffset, size });
          if ((dst.usage & GPUBufferUsage.MAP_READ) !== 0) {
            recording.problems.push(
              "a read-back inside the step",
            );
          }
        }
        return (orig as Fn).apply(this, a);
      } as never,
  );
  wrap(
    GPUComputePassEncoder.prototype,
    "setPipeline",
    (orig) =>
      function (this: GPUComputePassEncoder, p: GPUComputePipeline) {
        if (recording) recording.pipeline = p;
        return (orig as Fn).call(this, p);
      } as never,
  );
  wrap(
    GPUComputePassEncoder.prototype,
    "setBindGroup",
    (orig) =>
      function (this: GPUComputePassEncoder, index: number, bg: GPUBindGroup, ...rest: unknown[]) {
        if (recording) {
          if (index !== 0) recording.problems.push("a bind group at index > 0");
          recording.bindGroup = bg;
        }
        return (orig as Fn).call(this, index, bg, ...rest);
      } as never,
  );
  wrap(
    GPUComputePassEncoder.prototype,
    "dispatchWorkgroups",
    (orig) =>
      function (this: GPUComputePassEncoder, x: number, y = 1, z = 1) {
        counts.dispatches++;
        if (recording) {
          const { pipeline, bindGroup } = recording;
          if (!pipeline || !bindGroup) recording.problems.push("a dispatch without pipeline or bind group");
          else {
            recording.commands.push({ kind: "dispatch", pipeline, bindGroup, x, y, z });
            for (const b of recording.groupBuffers.get(bindGroup) ?? []) recording.bound.add(b);
            if (!recording.groupBuffers.has(bindGroup)) {
              recording.problems.push(
                "a bind group made before the step",
              );
            }
          }
        }
        return (orig as Fn).call(this, x, y, z);
      } as never,
  );
}

const hookedManagers = new WeakSet<object>();

/** Routes tfjs's buffer pool through the recorder: held during a recording, never reused if owned. */
function hookBufferManager(backend: WebGPUBackend): void {
  const bm = internals(backend).bufferManager;
  if (hookedManagers.has(bm)) return;
  hookedManagers.add(bm);
  const release = bm.releaseBuffer.bind(bm), acquire = bm.acquireBuffer.bind(bm);
  poolRelease.set(backend, release);
  bm.releaseBuffer = (buffer: GPUBuffer, reuse = true) => {
    const mapped = (buffer.usage & (GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE)) !== 0;
    if (recording && !mapped) {
      recording.held.add(buffer);
      return;
    }
    if (planOwned.has(buffer)) {
      ownedReleased.add(buffer);
      return;
    }
    release(buffer, reuse);
  };
  bm.acquireBuffer = (size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean) => {
    const b = acquire(size, usage, mappedAtCreation, reuse);
    recording?.fresh.add(b);
    return b;
  };
}

/** Cumulative WebGPU call counts (hooks installed on first call; take differences around work). */
export function gpuCallCounts(): GpuCallCounts {
  installHooks();
  return { ...counts };
}

/**
 * Runs `fn` with every `queue.submit` made but carrying no command buffers, so the GPU stays idle
 * and the time `fn` takes is host work only (JavaScript, tfjs bookkeeping, WebGPU encoding and the
 * submit call). For benchmarks: the work `fn` issues is not executed.
 */
export function withoutGpuWork<T>(fn: () => T): T {
  installHooks();
  dropWork = true;
  try {
    return fn();
  } finally {
    dropWork = false;
  }
}

/** Installs the call counters and recorder hooks for `backend` (idempotent, cheap). */
export function installGpuHooks(backend: WebGPUBackend): void {
  installHooks();
  hookBufferManager(backend);
}

/** Why a call could not be recorded (the caller runs it eagerly instead). */
export class NotRecordableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotRecordableError";
  }
}

/** A buffer copy done before the recorded commands on every replay (a new batch into the step's inputs). */
export interface InputCopy {
  src: GPUBuffer;
  dst: GPUBuffer;
  size: number;
}

/**
 * A recorded sequence of dispatches (and buffer-to-buffer copies) that replays in one command
 * encoder, one compute pass per run of dispatches and one submit. It owns every buffer the
 * recording created or released, so tfjs never hands them out again while it lives.
 */
export class RecordedProgram {
  readonly #backend: WebGPUBackend;
  readonly #commands: Command[];
  readonly #owned: GPUBuffer[];
  /** Dispatches per replay. */
  readonly dispatches: number;
  /** Compute passes per replay. */
  readonly passes: number;
  #disposed = false;

  constructor(backend: WebGPUBackend, commands: Command[], owned: GPUBuffer[], released: Set<GPUBuffer>) {
    this.#backend = backend;
    this.#commands = commands;
    this.#owned = owned;
    for (const b of owned) {
      planOwned.add(b);
      if (released.has(b)) ownedReleased.add(b);
    }
    this.dispatches = commands.filter((c) => c.kind === "dispatch").length;
    let passes = 0, inPass = false;
    for (const c of commands) {
      if (c.kind === "dispatch" && !inPass) passes++, inPass = true;
      if (c.kind === "copy") inPass = false;
    }
    this.passes = passes;
  }

  /**
   * Encodes `copies` and then the recorded commands into tfjs's command encoder (after whatever
   * tfjs has queued, e.g. the augmentation of this batch) and submits once.
   */
  replay(copies: readonly InputCopy[] = []): void {
    if (this.#disposed) throw new Error("RecordedProgram: replay after dispose");
    const be = internals(this.#backend);
    be.ensureCommandEncoderReady();
    be.endComputePassEncoder();
    const enc = be.commandEncoder!;
    for (const c of copies) enc.copyBufferToBuffer(c.src, 0, c.dst, 0, c.size);
    let pass: GPUComputePassEncoder | null = null;
    let pipeline: GPUComputePipeline | null = null;
    for (const c of this.#commands) {
      if (c.kind === "copy") {
        pass?.end();
        pass = null;
        enc.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
        continue;
      }
      if (!pass) pass = enc.beginComputePass(), pipeline = null;
      if (c.pipeline !== pipeline) pass.setPipeline(pipeline = c.pipeline);
      pass.setBindGroup(0, c.bindGroup);
      pass.dispatchWorkgroups(c.x, c.y, c.z);
    }
    pass?.end();
    be.submitQueue();
  }

  /** Gives the owned buffers back: to tfjs's pool where their tensors are gone, else to their tensors. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const release = poolRelease.get(this.#backend)!;
    for (const b of this.#owned) {
      planOwned.delete(b);
      if (ownedReleased.delete(b)) release(b);
    }
  }
}

/**
 * Runs `fn` once, eagerly, while recording every dispatch it issues, and returns its result with
 * the recording. `fn` must read its per-call data only from buffers that persist across calls
 * (inputs copied in by {@link RecordedProgram.replay}, parameters updated in place, values written
 * with {@link writeTensor} before each call) and must not read anything back.
 *
 * @throws NotRecordableError when the recording cannot be replayed faithfully (a buffer written
 * inside the call, a read-back, a bind group made outside it); `fn`'s work has still been done.
 */
export function recordCommands<T>(
  backend: WebGPUBackend,
  fn: () => T,
): { result: T; program: RecordedProgram } {
  installGpuHooks(backend);
  if (recording) throw new Error("recordCommands: already recording");
  flushCommands(backend);
  const rec: Recording = {
    pipeline: null,
    bindGroup: null,
    commands: [],
    groupBuffers: new Map(),
    bound: new Set(),
    fresh: new Set(),
    held: new Set(),
    written: new Set(),
    problems: [],
  };
  recording = rec;
  let result: T;
  try {
    result = fn();
    flushCommands(backend);
  } catch (err) {
    // Nothing was recorded: the buffers tfjs released meanwhile go back to its pool.
    const release = poolRelease.get(backend)!;
    for (const b of rec.held) release(b);
    throw err;
  } finally {
    recording = undefined;
  }
  // Own what the recording made or freed and its commands still bind; return the rest to tfjs.
  const owned = new Set<GPUBuffer>();
  for (const b of rec.bound) if (rec.fresh.has(b) || rec.held.has(b)) owned.add(b);
  for (const c of rec.commands) {
    if (c.kind === "copy") {
      for (const b of [c.src, c.dst]) if (rec.fresh.has(b) || rec.held.has(b)) owned.add(b);
    }
  }
  const release = poolRelease.get(backend)!;
  for (const b of rec.held) if (!owned.has(b)) release(b);
  if (rec.problems.length) {
    for (const b of owned) if (rec.held.has(b)) release(b);
    throw new NotRecordableError([...new Set(rec.problems)].join("; "));
  }
  return { result: result!, program: new RecordedProgram(backend, rec.commands, [...owned], rec.held) };
}
