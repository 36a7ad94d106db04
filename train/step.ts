/**
 * The training step — the only one: the trainer (train/loop.ts), `bench:step` and the tests all
 * run {@link TrainStep.run}. One step is
 *
 *     forward (training mode) → CutMix-mixed, label-smoothed cross-entropy → gradients → Adam
 *     → loss·valid and correct predictions added to the on-device metric accumulator
 *
 * With custom kernels the loss, Adam and the accumulation are one kernel each (kernels/
 * cross_entropy.ts, kernels/adam.ts, kernels/accumulate.ts); with stock kernels plain tfjs ops.
 *
 * Everything that changes from step to step (Adam's step size and bias correction, the CutMix λ,
 * the dropout / stochastic-depth RNG key and counter) is written once into the step-scalar block
 * (kernels/step_scalars.ts) before the step, and parameters, Adam moments, BN statistics and the
 * accumulator are updated in place. So consecutive full-batch steps issue exactly the same
 * dispatches on the same buffers, and on WebGPU with custom kernels the step is **recorded** once
 * (after one eager warm-up step compiled its pipelines) and then **replayed**: one buffer write, the
 * batch copied into the step's input slots, one pass, one submit, no tfjs bookkeeping
 * (runtime/gpu.ts `recordCommands`; docs/recorded-step.md). A partial last batch, stock kernels or
 * the CPU backend run the same computation eagerly; {@link TrainStep.path} says which ran.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import {
  copyTensor,
  flushCommands,
  gpuBufferOf,
  type InputCopy,
  invalidateCpuCopy,
  NotRecordableError,
  recordCommands,
  type RecordedProgram,
  sameBuffersAndInvalidate,
  tensorBytes,
  writeTensor,
} from "../runtime/gpu.ts";
import { adamStepScalars, cutmixCrossEntropy, type KernelChoice, STEP_SCALARS } from "../kernels/mod.ts";
import { accumulateMetrics } from "../kernels/accumulate.ts";
import type { Ctx, Model } from "../models/core.ts";
import type { Rng } from "../runtime/rng.ts";
import type { TrainBatch } from "../data/types.ts";
import { type AdamState, applyAdam } from "./optimizer.ts";
import { cutmixSmoothedCrossEntropy } from "./loss.ts";

/** How full-batch steps run: recorded once and replayed, or every step through tfjs. */
export type StepMode = "recorded" | "eager";

/** The path a step took. */
export type StepPath = "recorded" | "replayed" | "eager";

/** Fixed choices of a run's steps. */
export interface TrainStepOptions {
  kernels: KernelChoice;
  /** Label smoothing of the cross-entropy (the preset's value). */
  labelSmoothing: number;
  /** Default "recorded" (applies on WebGPU with custom kernels; eager elsewhere). */
  mode?: StepMode;
  /** Where the one-line notes go (why a step could not be recorded). */
  log?: (line: string) => void;
}

/** The RNG key of an epoch and the counter of a step within it (dropout / stochastic depth). */
export interface StepRandom {
  seed: number;
  counter: number;
}

/** Sums since the last {@link TrainStep.resetMetrics}. */
export interface StepSums {
  /** Σ loss·valid over steps. */
  lossSum: number;
  /** Correct top-1 predictions (against y_a). */
  correct: number;
}

/** One model's training step with its optimizer state, scalars, accumulator and (recorded) plan. */
export class TrainStep {
  readonly #model: Model;
  readonly #adam: AdamState;
  readonly #o: Required<Omit<TrainStepOptions, "log">> & Pick<TrainStepOptions, "log">;
  readonly #vars: tf.Variable[];
  readonly #ctx: Ctx;
  readonly #scalars: Tensor;
  readonly #acc: tf.Variable;
  readonly #gpu: WebGPUBackend | undefined;
  #slots: { x: Tensor; yA: Tensor; yB: Tensor } | undefined;
  #plan: RecordedProgram | undefined;
  /** The persistent tensors the plan binds and their buffers as recorded (a change invalidates it). */
  #planTensors: Tensor[] = [];
  #planState: GPUBuffer[] = [];
  #warm = false;
  #recordable: boolean;
  #whyEager: string | undefined;
  /** This step's scalars as written to the block (reused: nothing is allocated per step). */
  readonly #block = new Float32Array(STEP_SCALARS.length);
  readonly #blockBits = new Uint32Array(this.#block.buffer);
  /** The path the last {@link run} took. */
  path: StepPath = "eager";

  constructor(model: Model, adam: AdamState, ctx: Ctx, o: TrainStepOptions) {
    this.#model = model;
    this.#adam = adam;
    this.#ctx = ctx;
    this.#o = { mode: "recorded", ...o };
    this.#vars = model.params.trainableVariables();
    this.#gpu = tf.getBackend() === "webgpu" ? tf.backend() as WebGPUBackend : undefined;
    this.#whyEager = o.kernels === "stock"
      ? "stock kernels"
      : this.#gpu === undefined
      ? "CPU backend"
      : this.#o.mode === "eager"
      ? "--step eager"
      : undefined;
    this.#recordable = this.#whyEager === undefined;
    this.#scalars = tf.tensor1d(new Float32Array(STEP_SCALARS.length));
    const zeros = tf.zeros([2]);
    this.#acc = tf.variable(zeros, false);
    zeros.dispose();
    if (this.#gpu) gpuBufferOf(this.#gpu, this.#scalars);
  }

  /** Whether full-batch steps are replayed from a recording (once one exists). */
  get recording(): boolean {
    return this.#recordable;
  }

  /** Why full-batch steps run eagerly (undefined while they are, or will be, recorded). */
  get whyEager(): string | undefined {
    return this.#whyEager;
  }

  /** Dispatches and passes of one replayed step (undefined before the recording). */
  get plan(): { dispatches: number; passes: number } | undefined {
    return this.#plan && { dispatches: this.#plan.dispatches, passes: this.#plan.passes };
  }

  /**
   * One step on `batch` at learning rate `lr`. Takes ownership of the batch's tensors (disposed
   * here). Adam's step count advances by one.
   */
  run(batch: TrainBatch, lr: number, random: StepRandom): void {
    this.#writeScalars(lr, batch.lambda, random);
    const full = batch.valid === batch.x.shape[0];
    if (this.#recordable && full && this.#warm) {
      this.#runRecorded(batch, lr);
    } else {
      const [x, yA, yB] = full
        ? [batch.x, batch.yA, batch.yB]
        : [batch.x, batch.yA, batch.yB].map((t) => tf.slice(t, 0, batch.valid));
      this.#compute(x, yA, yB, batch.valid, lr);
      if (!full) tf.dispose([x, yA, yB]);
      this.#warm ||= full;
      this.path = "eager";
    }
    tf.dispose([batch.x, batch.yA, batch.yB]);
  }

  /** The step itself, through tfjs (recorded when called inside `recordCommands`). */
  #compute(x: Tensor, yA: Tensor, yB: Tensor, valid: number, lr: number): void {
    const ctx = this.#ctx;
    ctx.random = { scalars: this.#scalars, site: 0 };
    let logits!: Tensor;
    const smoothing = this.#o.labelSmoothing;
    const { value, grads } = tf.variableGrads(() => {
      logits = tf.keep(this.#model.apply(x, ctx));
      if (this.#o.kernels === "custom") {
        return cutmixCrossEntropy(logits, yA, yB, this.#scalars, smoothing) as tf.Scalar;
      }
      const lambda = tf.slice(this.#scalars, [STEP_SCALARS.lambda], [1]);
      return cutmixSmoothedCrossEntropy(logits, yA, yB, lambda, smoothing) as tf.Scalar;
    }, this.#vars);
    applyAdam(this.#vars, this.#vars.map((v) => grads[v.name]), this.#adam, lr, {
      kernels: this.#o.kernels,
      scalars: this.#scalars,
    });
    accumulateMetrics(this.#acc, value, logits, yA, valid);
    tf.dispose([value, grads, logits]);
    ctx.random = undefined;
  }

  /** Full batch on WebGPU: replay the plan, or record it on the first call after the warm-up. */
  #runRecorded(batch: TrainBatch, lr: number): void {
    const gpu = this.#gpu!;
    // The replay writes the state behind tfjs's back, so its CPU copies are dropped here too.
    if (this.#plan && !sameBuffersAndInvalidate(gpu, this.#planTensors, this.#planState)) {
      this.#dropPlan("a parameter or state tensor moved");
    }
    const slots = this.#slots ??= {
      x: tf.zeros(batch.x.shape, "float32"),
      yA: tf.zeros(batch.yA.shape, "int32"),
      yB: tf.zeros(batch.yB.shape, "int32"),
    };
    const pairs: Array<[Tensor, Tensor]> = [[batch.x, slots.x], [batch.yA, slots.yA], [batch.yB, slots.yB]];
    if (pairs.some(([b, s]) => !sameShape(b, s))) {
      this.#dropPlan("the batch shape changed");
      tf.dispose([slots.x, slots.yA, slots.yB]);
      this.#slots = undefined;
      return this.#runRecorded(batch, lr);
    }
    if (this.#plan) {
      const copies: InputCopy[] = pairs.map(([b, s]) => ({
        src: gpuBufferOf(gpu, b),
        dst: gpuBufferOf(gpu, s),
        size: tensorBytes(b),
      }));
      this.#plan.replay(copies);
      this.#adam.step += 1; // what applyAdam does on the eager path
      this.path = "replayed";
      return;
    }
    for (const [b, s] of pairs) copyTensor(gpu, b, s);
    try {
      this.#plan = recordCommands(gpu, () =>
        this.#compute(slots.x, slots.yA, slots.yB, batch.valid, lr)).program;
      this.#planTensors = this.#stateTensors();
      this.#planState = this.#planTensors.map((t) => gpuBufferOf(gpu, t));
      this.path = "recorded";
    } catch (e) {
      if (!(e instanceof NotRecordableError)) throw e;
      // The step ran (eagerly) all the same; later steps stay eager.
      this.#recordable = false;
      this.#whyEager = `not recordable: ${e.message}`;
      this.path = "eager";
      this.#o.log?.(`recorded step unavailable (${e.message}); running eager steps`);
    }
  }

  #stateTensors(): Tensor[] {
    const s = this.#slots!;
    return [
      ...this.#model.params.entries.flatMap((e) => e.variable ? [e.variable] : []),
      this.#adam.m,
      this.#adam.v,
      this.#acc,
      this.#scalars,
      s.x,
      s.yA,
      s.yB,
    ];
  }

  #dropPlan(why: string): void {
    if (!this.#plan) return;
    this.#o.log?.(`re-recording the training step: ${why}`);
    this.#plan.dispose();
    this.#plan = undefined;
  }

  /** Writes this step's scalars (after Adam's step count advances) into the block. */
  #writeScalars(lr: number, lambda: number, random: StepRandom): void {
    const block = this.#block;
    const [stepSize, bc2Sqrt] = adamStepScalars(this.#adam.step + 1, lr);
    block[STEP_SCALARS.adamStepSize] = stepSize;
    block[STEP_SCALARS.adamBc2Sqrt] = bc2Sqrt;
    block[STEP_SCALARS.lambda] = lambda;
    const bits = this.#blockBits;
    bits[STEP_SCALARS.seed] = random.seed >>> 0;
    bits[STEP_SCALARS.counter] = random.counter >>> 0;
    if (this.#gpu) {
      // The previous step's commands must be submitted before the block changes under them.
      flushCommands(this.#gpu);
      writeTensor(this.#gpu, this.#scalars, block);
    } else {
      cpuValues(this.#scalars).set(block);
    }
  }

  /** Reads the accumulated loss sum and correct count (one read-back). */
  async readMetrics(): Promise<StepSums> {
    const [lossSum, correct] = await this.#acc.data();
    return { lossSum, correct };
  }

  /** Zeroes the accumulator (at an epoch start). */
  resetMetrics(): void {
    if (this.#gpu) {
      flushCommands(this.#gpu);
      writeTensor(this.#gpu, this.#acc, new Float32Array(2));
    } else {
      cpuValues(this.#acc).fill(0);
    }
  }

  /** Frees the plan, slots, scalars and accumulator (not the model or the optimizer state). */
  dispose(): void {
    this.#plan?.dispose();
    this.#plan = undefined;
    if (this.#slots) tf.dispose([this.#slots.x, this.#slots.yA, this.#slots.yB]);
    tf.dispose([this.#scalars, this.#acc]);
  }
}

/**
 * The evaluation forward pass (eval mode: BN running statistics, no dropout), recorded and replayed
 * like the training step: the first batch of a shape runs eagerly, the second is recorded with its
 * logits copied into an output slot, later ones replay (one copy in, one pass, one copy out, one
 * submit). Eager on the CPU backend, with stock kernels or in eager mode.
 */
export class EvalForward {
  readonly #model: Model;
  readonly #ctx: Ctx;
  readonly #gpu: WebGPUBackend | undefined;
  #recordable: boolean;
  #slots: { x: Tensor; out: Tensor } | undefined;
  #plan: RecordedProgram | undefined;
  #planState: GPUBuffer[] = [];
  #warmShape = "";
  /** Logits shape of the warm-up call (the output slot's). */
  #outShape: number[] = [];
  /** The path the last {@link run} took. */
  path: StepPath = "eager";

  constructor(model: Model, kernels: KernelChoice, mode: StepMode = "recorded") {
    this.#model = model;
    this.#ctx = { training: false, rng: undefined as unknown as Rng, kernels };
    this.#gpu = tf.getBackend() === "webgpu" ? tf.backend() as WebGPUBackend : undefined;
    this.#recordable = mode === "recorded" && kernels === "custom" && this.#gpu !== undefined;
  }

  /** Logits of `x` (the caller disposes both). */
  run(x: Tensor): Tensor {
    const shape = x.shape.join("x");
    if (!this.#recordable || shape !== this.#warmShape) {
      if (this.#slots && shape !== this.#warmShape) this.#reset();
      this.#warmShape = shape;
      this.path = "eager";
      const logits = tf.tidy(() => this.#model.apply(x, this.#ctx));
      this.#outShape = logits.shape;
      return logits;
    }
    const gpu = this.#gpu!;
    if (this.#plan && !this.#state().every((b, i) => b === this.#planState[i])) this.#reset();
    if (!this.#slots) {
      this.#slots = { x: tf.zeros(x.shape), out: tf.zeros(this.#outShape) };
      gpuBufferOf(gpu, this.#slots.x);
      gpuBufferOf(gpu, this.#slots.out);
    }
    const { x: xs, out } = this.#slots;
    if (this.#plan) {
      this.#plan.replay([{ src: gpuBufferOf(gpu, x), dst: gpuBufferOf(gpu, xs), size: tensorBytes(x) }]);
      this.path = "replayed";
    } else {
      copyTensor(gpu, x, xs);
      try {
        this.#plan = recordCommands(gpu, () => {
          const logits = tf.tidy(() => this.#model.apply(xs, this.#ctx));
          copyTensor(gpu, logits, out);
          logits.dispose();
        }).program;
        this.#planState = this.#state();
        this.path = "recorded";
      } catch (e) {
        if (!(e instanceof NotRecordableError)) throw e;
        this.#recordable = false;
      }
    }
    invalidateCpuCopy(gpu, out);
    return tf.clone(out);
  }

  #state(): GPUBuffer[] {
    const ts: Tensor[] = this.#model.params.entries.flatMap((e) => e.variable ? [e.variable] : []);
    if (this.#slots) ts.push(this.#slots.x, this.#slots.out);
    return ts.map((t) => gpuBufferOf(this.#gpu!, t));
  }

  #reset(): void {
    this.#plan?.dispose();
    this.#plan = undefined;
    if (this.#slots) tf.dispose([this.#slots.x, this.#slots.out]);
    this.#slots = undefined;
  }

  /** Frees the plan and slots. */
  dispose(): void {
    this.#reset();
  }
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i]);
}

/** The CPU backend's values array behind a tensor (written in place for the scalar block). */
function cpuValues(t: Tensor): Float32Array {
  const be = tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } };
  return be.data.get(t.dataId).values;
}

/** The per-epoch RNG key for dropout / stochastic depth, drawn from the run's model RNG. */
export function epochRandomSeed(rng: Rng): number {
  return rng.nextUint32();
}
