/**
 * Adapts the data pipeline (data/cache/ splits → data/loader.ts loaders with GPU augmentation)
 * to the training loop's {@link TrainSource}.
 *
 * @module
 */
import type { CacheHandle } from "../data/cache/mod.ts";
import { createEvalLoader, createTrainLoader, type EvalLoader, fromCacheSplit } from "../data/loader.ts";
import type { Preset } from "./presets.ts";
import type { TrainSource } from "./loop.ts";

/**
 * The training source of a run: the `train` split through the preset's training transforms
 * (CutMix included) and the `test` split through its test transforms at `evalBatch`. The
 * loader derives each batch's generator from (seed, epoch, batch), so its checkpointed state is
 * the seed alone.
 */
export async function openTrainSource(
  cache: CacheHandle,
  preset: Preset,
  seed: number,
  evalBatch: number,
): Promise<TrainSource> {
  const train = createTrainLoader({
    source: fromCacheSplit(await cache.split("train")),
    protocol: preset.data,
    batchSize: preset.batchSize,
    imageSize: preset.imageSize,
    seed,
    limit: preset.trainLimit,
  });
  const test = await openTestLoader(cache, preset, evalBatch);
  return {
    stepsPerEpoch: train.batchesPerEpoch,
    trainImages: train.count,
    testImages: test.count,
    trainBatches: (epoch) => train.epoch(epoch),
    evalBatches: () => test.batchesIter(),
    rngState: () => [seed],
    setRngState: (state) => {
      if (state[0] !== seed) {
        throw new Error(`checkpoint data seed ${state[0]} differs from this run's ${seed}`);
      }
    },
  };
}

/**
 * The evaluation batch of a run: the preset's test batch, shrunk to what one storage binding of
 * `maxBindingBytes` holds at `bytesPerImage` (the model's largest activation per image). It only
 * affects speed, but `train` and `eval` must agree on it so their batches (and results) are the same.
 */
export function evalBatchSize(preset: Preset, bytesPerImage: number, maxBindingBytes: number): number {
  return Math.max(1, Math.min(preset.data.testBatch, Math.floor(maxBindingBytes / bytesPerImage)));
}

/** The `test` split through the preset's test transforms, in fixed order, at `evalBatch`. */
export async function openTestLoader(
  cache: CacheHandle,
  preset: Preset,
  evalBatch: number,
): Promise<EvalLoader> {
  return createEvalLoader({
    source: fromCacheSplit(await cache.split("test")),
    protocol: preset.data,
    batchSize: evalBatch,
    imageSize: preset.imageSize,
    limit: preset.testLimit,
  });
}
