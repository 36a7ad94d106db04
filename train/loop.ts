/**
 * The training loop: the reference protocol (Adam, per-epoch or short-run LR schedule, CutMix +
 * smoothed CE, BN in train mode, test-set evaluation after every epoch), with an atomic checkpoint
 * after every epoch, exact resume, NaN/lost-device stops, and the results written at the end.
 * {@link train} reads top to bottom; helpers follow it.
 *
 * @module
 */
import { Rng } from "../runtime/rng.ts";
import { assertGpuHealthy } from "../runtime/webgpu.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import { formatCsv } from "../runtime/csv.ts";
import { formatDuration } from "../runtime/format.ts";
import { UserError } from "../runtime/errors.ts";
import type { Ctx, KernelChoice, Model } from "../models/core.ts";
import type { EvalBatch, TrainBatch } from "../data/types.ts";
import { createAdamState, disposeAdamState } from "./optimizer.ts";
import { LABEL_SMOOTHING } from "./loss.ts";
import { epochRandomSeed, EvalForward, type StepMode, type StepPath, TrainStep } from "./step.ts";
import { describeSchedule, lrAt, type ScheduleSpec } from "./schedule.ts";
import { type CheckpointMeta, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { encodeSafetensors, torchStateDict } from "./safetensors.ts";
import { MetricsLog } from "./metrics.ts";
import { evaluateBatches } from "./evaluate.ts";
import { assertFiniteState, DIVERGED_EXIT_CODE, lastGood } from "./health.ts";

/** Where batches come from (an adapter over the data pipeline's loader, or synthetic data in tests). */
export interface TrainSource {
  /** Training batches per epoch. */
  readonly stepsPerEpoch: number;
  /** Training images per epoch (for images/s). */
  readonly trainImages: number;
  /** Test-set size (the accuracy denominator). */
  readonly testImages: number;
  /** The batches of epoch `epoch`, in order. All randomness comes from the source's own RNG. */
  trainBatches(epoch: number): AsyncIterable<TrainBatch> | Iterable<TrainBatch>;
  /** The whole test split, in fixed order. */
  evalBatches(): AsyncIterable<EvalBatch> | Iterable<EvalBatch>;
  /** The source RNG's state at an epoch boundary (checkpointed) and its restore. */
  rngState(): number[];
  setRngState(state: number[]): void;
}

/** Everything one run needs besides the model and data. */
export interface RunOptions {
  schedule: ScheduleSpec;
  /** Run directory: checkpoint, per-epoch CSV, final weights. */
  dir: string;
  /** The model RNG (dropout / stochastic depth), checkpointed with the run. */
  rng: Rng;
  kernels: KernelChoice;
  /** Label smoothing of the loss (the preset's value; default the reference 0.05). */
  labelSmoothing?: number;
  /** Recorded (default where it applies) or eager training steps (train/step.ts). */
  step?: StepMode;
  /** Continue from `dir/checkpoint.safetensors` if present. */
  resume: boolean;
  /** Stored in the checkpoint; a resume with a different fingerprint is refused. */
  fingerprint: Record<string, unknown>;
  /** Read the accumulated loss every this many steps (and at each epoch end). */
  readEvery?: number;
  log?: (line: string) => void;
  /**
   * Called after every optimizer step with the number of steps this process has run (progress
   * reporting, or a test that throws from it to stand in for a kill mid-epoch).
   */
  onStep?: (sessionSteps: number) => void;
  /** Also write TensorBoard event files (scalars) into this folder (train/metrics.ts). */
  tensorboard?: string;
}

/** One row of the per-epoch CSV. */
export interface EpochRecord {
  epoch: number;
  lr_first: number;
  lr_last: number;
  train_loss: number;
  train_accuracy: number;
  test_accuracy: number;
  train_seconds: number;
  eval_seconds: number;
  images_per_second: number;
}

/** A finished run. */
export interface RunResult {
  /** Last-epoch test accuracy (%). */
  accuracy: number;
  bestAccuracy: number;
  /** 1-based epoch of the best accuracy. */
  bestEpoch: number;
  history: EpochRecord[];
  /** Training time summed over epochs, evaluation excluded (s). */
  trainSeconds: number;
  imagesPerSecond: number;
  weightsPath: string;
  /** Total optimizer steps. */
  steps: number;
}

/**
 * The loss became NaN/Inf: the run stopped, its last good checkpoint is kept. A {@link UserError}
 * with {@link DIVERGED_EXIT_CODE}, like the state check of train/health.ts.
 */
export class NonFiniteLossError extends UserError {
  constructor(message: string) {
    super(message, DIVERGED_EXIT_CODE);
    this.name = "NonFiniteLossError";
  }
}

/** Checkpoint, per-epoch CSV and weights paths of a run directory. */
export function runPaths(dir: string) {
  return {
    checkpoint: `${dir}/checkpoint.safetensors`,
    epochs: `${dir}/epochs.csv`,
    weights: `${dir}/weights.safetensors`,
    /** The weights of the best epoch so far (PyTorch names, like weights.safetensors). */
    best: `${dir}/best.safetensors`,
    /** One JSON object per progress line and per epoch (train/metrics.ts). */
    metrics: `${dir}/metrics.jsonl`,
  };
}

/** Trains `model` on `data` with the reference protocol; see the module doc. */
export async function train(model: Model, data: TrainSource, o: RunOptions): Promise<RunResult> {
  const log = o.log ?? console.log;
  const runFiles = runPaths(o.dir);
  const vars = model.params.trainableVariables();
  const adam = createAdamState(vars);
  const ctx: Ctx = { training: true, rng: o.rng, kernels: o.kernels };
  const readEvery = o.readEvery ?? 25;
  const { epochs, stepsPerEpoch } = o.schedule;
  let history: EpochRecord[] = [];
  let start = 0;
  if (o.resume && (await exists(runFiles.checkpoint))) {
    const meta = await loadCheckpoint(runFiles.checkpoint, model.params, adam);
    assertSameRun(meta, o.fingerprint, runFiles.checkpoint);
    ctx.rng = Rng.fromState(meta.rngs.model);
    data.setRngState(meta.rngs.data);
    history = meta.run.history as EpochRecord[];
    start = meta.epochsDone;
    log(`resumed from ${runFiles.checkpoint} after epoch ${start}/${epochs}`);
  }
  log(`schedule: ${describeSchedule(o.schedule)}`);
  const trainStep = new TrainStep(model, adam, ctx, {
    kernels: o.kernels,
    labelSmoothing: o.labelSmoothing ?? LABEL_SMOOTHING,
    mode: o.step,
    log,
  });
  const evalForward = new EvalForward(model, o.kernels, o.step);
  let steps = start * stepsPerEpoch, sessionSteps = 0, evalSeconds = 0;
  const paths = new Map<StepPath, number>();
  const sessionStart = performance.now();
  let metrics: MetricsLog | undefined;
  try {
    metrics = await MetricsLog.open(runFiles.metrics, { keepEpochs: start, tensorboard: o.tensorboard });
    for (let epoch = start; epoch < epochs; epoch++) {
      const t0 = performance.now();
      trainStep.resetMetrics();
      const seed = epochRandomSeed(ctx.rng);
      let seen = 0, step = 0;
      for await (const batch of data.trainBatches(epoch)) {
        const lr = lrAt(o.schedule, epoch, step);
        seen += batch.valid;
        trainStep.run(batch, lr, { seed, counter: step });
        paths.set(trainStep.path, (paths.get(trainStep.path) ?? 0) + 1);
        step++, steps++, sessionSteps++;
        if (sessionSteps === 2) log(describeStepPath(trainStep));
        if (step % readEvery === 0 && step < stepsPerEpoch) {
          const m = await trainStep.readMetrics();
          const loss = checkedLoss(m.lossSum, seen, epoch, step);
          const acc = m.correct / seen * 100;
          const perStep = ((performance.now() - sessionStart) / 1000 - evalSeconds) / sessionSteps;
          const eta = perStep * (epochs * stepsPerEpoch - steps) +
            (epochs - epoch) * evalSeconds / Math.max(1, epoch - start);
          log(
            progressLine(
              epoch,
              epochs,
              step,
              stepsPerEpoch,
              loss,
              acc,
              seen / ((performance.now() - t0) / 1000),
              eta,
            ),
          );
          metrics.step({
            epoch: epoch + 1,
            step,
            stepsPerEpoch,
            globalStep: steps,
            lr,
            loss,
            trainAccuracy: acc,
            imagesPerSecond: seen / ((performance.now() - t0) / 1000),
          });
        }
        o.onStep?.(sessionSteps);
      }
      const m = await trainStep.readMetrics();
      const trainSeconds = (performance.now() - t0) / 1000;
      const trainLoss = checkedLoss(m.lossSum, seen, epoch, step);
      const trainAcc = m.correct / seen * 100;
      const t1 = performance.now();
      const ev = await evaluateBatches((x) => evalForward.run(x), data.evalBatches());
      if (ev.images !== data.testImages) {
        throw new Error(`evaluated ${ev.images} test images, expected ${data.testImages}`);
      }
      const testAcc = ev.top1;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        lr_first: lrAt(o.schedule, epoch, 0),
        lr_last: lrAt(o.schedule, epoch, stepsPerEpoch - 1),
        train_loss: trainLoss,
        train_accuracy: trainAcc,
        test_accuracy: testAcc,
        train_seconds: trainSeconds,
        eval_seconds: (performance.now() - t1) / 1000,
        images_per_second: seen / trainSeconds,
      };
      history.push(rec);
      evalSeconds += rec.eval_seconds;
      const perEpoch = ((performance.now() - sessionStart) / 1000) / (epoch + 1 - start);
      log(summaryLine(rec, epochs, perEpoch * (epochs - epoch - 1)));
      // Weights, BN statistics and Adam moments can hold NaN/Inf while the loss is finite (train/health.ts).
      await assertFiniteState(
        model.params,
        adam,
        `after epoch ${epoch + 1}`,
        lastGood(runFiles.checkpoint, epoch),
      );
      // Only a finite epoch reaches metrics.jsonl and TensorBoard.
      metrics.epoch({
        epoch: rec.epoch,
        globalStep: steps,
        lrFirst: rec.lr_first,
        lrLast: rec.lr_last,
        trainLoss: rec.train_loss,
        trainAccuracy: rec.train_accuracy,
        testAccuracy: rec.test_accuracy,
        testLoss: ev.loss,
        testTop5: ev.top5,
        trainSeconds: rec.train_seconds,
        evalSeconds: rec.eval_seconds,
        imagesPerSecond: rec.images_per_second,
      });
      await writeFileAtomic(
        runFiles.epochs,
        formatCsv(Object.keys(rec), history.map((r) => Object.values(r))),
      );
      // This epoch is the run's best so far: best.safetensors follows the ledger's best_epoch.
      if (bestEpoch(history) === rec) {
        await writeFileAtomic(
          runFiles.best,
          encodeSafetensors(await torchStateDict(model.params.entries, steps), {
            format: "pt",
            run: JSON.stringify(o.fingerprint),
            epoch: String(rec.epoch),
          }),
        );
      }
      const meta: CheckpointMeta = {
        epochsDone: epoch + 1,
        rngs: { model: ctx.rng.state(), data: data.rngState() },
        run: { fingerprint: o.fingerprint, history },
      };
      await saveCheckpoint(runFiles.checkpoint, model.params, adam, meta);
    }
    await writeFileAtomic(
      runFiles.weights,
      encodeSafetensors(await torchStateDict(model.params.entries, steps), {
        format: "pt",
        run: JSON.stringify(o.fingerprint),
      }),
    );
    log(`training steps: ${[...paths].map(([p, n]) => `${n} ${p}`).join(", ")}`);
    return summarize(history, runFiles.weights, steps);
  } finally {
    metrics?.close();
    trainStep.dispose();
    evalForward.dispose();
    disposeAdamState(adam);
  }
}

function checkedLoss(lossSum: number, seen: number, epoch: number, step: number): number {
  const loss = lossSum / seen;
  assertGpuHealthy();
  if (!Number.isFinite(loss)) {
    throw new NonFiniteLossError(
      `training loss became ${loss} in epoch ${epoch + 1} by step ${step}; stopped. The last good ` +
        `checkpoint (end of epoch ${epoch}) is kept: lower the LR or check the data, then --resume`,
    );
  }
  return loss;
}

/** The log line saying which step path a run uses (after its second step). */
function describeStepPath(s: TrainStep): string {
  const plan = s.plan;
  if (plan) {
    return `training step: recorded (${plan.dispatches} dispatches, ${plan.passes} pass${
      plan.passes === 1 ? "" : "es"
    }, replayed from step 3; partial batches run eagerly)`;
  }
  return `training step: eager (${s.whyEager ?? "not recorded yet"})`;
}

function assertSameRun(meta: CheckpointMeta, fingerprint: Record<string, unknown>, path: string): void {
  const saved = JSON.stringify(meta.run.fingerprint), now = JSON.stringify(fingerprint);
  if (saved !== now) {
    throw new UserError(
      `${path} was written by a different configuration (${saved}); this run is ${now}. ` +
        `Use the same flags to resume, or another --out`,
    );
  }
}

function progressLine(
  epoch: number,
  epochs: number,
  step: number,
  steps: number,
  loss: number,
  acc: number,
  ips: number,
  etaSeconds: number,
): string {
  return `  epoch ${epoch + 1}/${epochs} step ${step}/${steps}  loss ${loss.toFixed(4)}  train acc ` +
    `${acc.toFixed(2)}%  ${ips.toFixed(1)} img/s  ETA ${formatDuration(etaSeconds)}`;
}

function summaryLine(r: EpochRecord, epochs: number, etaSeconds: number): string {
  return `epoch ${r.epoch}/${epochs}  lr ${r.lr_first.toExponential(3)}→${r.lr_last.toExponential(3)}  ` +
    `loss ${r.train_loss.toFixed(4)}  train acc ${r.train_accuracy.toFixed(2)}%  test acc ` +
    `${r.test_accuracy.toFixed(2)}%  ${r.images_per_second.toFixed(1)} img/s  ` +
    `train ${r.train_seconds.toFixed(1)} s  eval ${r.eval_seconds.toFixed(1)} s  ETA ${
      formatDuration(etaSeconds)
    }`;
}

/** The first epoch with the highest test accuracy (the ledger's best_epoch). */
function bestEpoch(history: readonly EpochRecord[]): EpochRecord {
  let best = history[0];
  for (const r of history) if (r.test_accuracy > best.test_accuracy) best = r;
  return best;
}

/** Last/best accuracy and throughput of a finished history. */
export function summarize(history: EpochRecord[], weightsPath: string, steps: number): RunResult {
  const last = history[history.length - 1];
  const best = bestEpoch(history);
  const trainSeconds = history.reduce((s, r) => s + r.train_seconds, 0);
  const images = history.reduce((s, r) => s + r.images_per_second * r.train_seconds, 0);
  return {
    accuracy: last.test_accuracy,
    bestAccuracy: best.test_accuracy,
    bestEpoch: best.epoch,
    history,
    trainSeconds,
    imagesPerSecond: images / trainSeconds,
    weightsPath,
    steps,
  };
}
