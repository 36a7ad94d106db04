/**
 * Batch loaders: seeded per-epoch order over an image source (the packed cache), fixed batch
 * shapes, CPU reads of the next batch prepared while the GPU works on the current one, and GPU
 * augmentation (data/augment/) into {@link TrainBatch} / {@link EvalBatch}.
 *
 * Randomness: every epoch and every batch has its own generator derived from (seed, epoch, batch),
 * so an epoch's order and augmentation do not depend on what ran before, and a run resumes
 * exactly from `{ epoch, nextBatch }` ({@link TrainLoader.rngState}).
 *
 * Batch shapes never change (tfjs's buffer pool is keyed by size): a last partial training batch
 * is dropped when the protocol says `dropLast` (HAM10000, Stanford Dogs), otherwise padded by
 * repeating images from the start of the epoch order with `valid` < B; CutMix pairs real samples
 * only with real samples. Evaluation always pads and reports `valid`.
 *
 * Geometry: where the stored images are our stretches of differently shaped originals and the
 * protocol is defined on the originals (Imagenette; {@link ImageSource.sourceSizes}), crops and
 * Resize/CenterCrop are computed on each image's original size and mapped onto the stored image.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { Rng } from "../runtime/rng.ts";
import { UserError } from "../runtime/errors.ts";
import type { EvalBatch, TrainBatch } from "./types.ts";
import type { DatasetProtocol } from "./protocol.ts";
import {
  augmentEvalBatch,
  type AugmentPipeline,
  augmentTrainBatch,
  type BatchPlan,
  compileEval,
  compileTrain,
  type OriginalSizes,
  planTrainBatch,
} from "./augment/mod.ts";

/** Where images come from: one split of fixed-size uint8 HWC images (see {@link fromCacheSplit}). */
export interface ImageSource {
  /** Number of images. */
  count: number;
  height: number;
  width: number;
  /** 1 (grey) or 3 (RGB). */
  channels: number;
  /** Class index of every image. */
  labels: ArrayLike<number>;
  /** Writes the images at `indices`, in that order, into `out` (`indices.length · H · W · C` bytes). */
  readImages(indices: Int32Array, out: Uint8Array): void | Promise<unknown>;
  /**
   * Original (width, height) of every image as `[count · 2]` pairs, given only when each stored
   * image is a stretch of its whole original and the protocol's geometry is defined on the
   * original (the cache's `sourceGeometry` flag, from the dataset registry). The loaders then draw
   * RandomResizedCrop and Resize/CenterCrop on the original size and map them onto the stored
   * image, so aspect ratios are the original's. Absent: geometry is drawn on the stored image.
   */
  sourceSizes?: ArrayLike<number>;
  /**
   * How each stored image was cut from its original when {@link ImageSource.sourceSizes} is given:
   * "stretch" (default, the whole original) or "center-square" (its largest centred square: only
   * RandomResizedCrop is then drawn on the original; data/augment/ `OriginalSizes.fit`).
   */
  sourceFit?: "stretch" | "center-square";
}

/** The subset of data/cache/ `CacheSplit` the loaders use. */
export interface CacheSplitLike {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly labels: ArrayLike<number>;
  /** Source sizes before resizing, `[count · 2]` (width, height) pairs. */
  readonly sourceSizes?: ArrayLike<number>;
  /** True when the protocol's geometry applies to the source image, not the stored stretch. */
  readonly sourceGeometry?: boolean;
  /** How the stored images were cut from their sources (data/images.ts `StorageFit`). */
  readonly storageFit?: "stretch" | "center-square";
  gather(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array>;
}

/**
 * Adapts an opened cache split (data/cache/ `CacheSplit`) to an {@link ImageSource}; passes the
 * source sizes on only when the split's `sourceGeometry` flag is set.
 */
export function fromCacheSplit(split: CacheSplitLike): ImageSource {
  return {
    count: split.count,
    height: split.height,
    width: split.width,
    channels: split.channels,
    labels: split.labels,
    sourceSizes: split.sourceGeometry ? split.sourceSizes : undefined,
    sourceFit: split.sourceGeometry ? split.storageFit : undefined,
    readImages: (indices, out) => split.gather(indices, out),
  };
}

/**
 * The original sizes of the images at `idx` as (width, height) pairs with the stored shape and fit,
 * or undefined without sizes: what the batch plans draw geometry on ({@link OriginalSizes}).
 */
function originalSizes(source: ImageSource, idx: Int32Array): OriginalSizes | undefined {
  const all = source.sourceSizes;
  if (!all) return undefined;
  const sizes = new Uint32Array(idx.length * 2);
  for (let i = 0; i < idx.length; i++) {
    sizes[2 * i] = all[2 * idx[i]];
    sizes[2 * i + 1] = all[2 * idx[i] + 1];
  }
  return { sizes, height: source.height, width: source.width, fit: source.sourceFit };
}

/** Resume point of a training loader: the next batch to produce. */
export interface LoaderState {
  seed: number;
  epoch: number;
  nextBatch: number;
}

/** Options of {@link createTrainLoader}. */
export interface TrainLoaderOptions {
  source: ImageSource;
  protocol: DatasetProtocol;
  /** Fixed batch size B. */
  batchSize: number;
  /** Output side S (the model input size of the run). */
  imageSize: number;
  /** Seed of the data order and augmentation. */
  seed: number;
  /** CutMix on every batch (default: `protocol.cutmix`). */
  cutmix?: boolean;
  /** Use only the first `limit` images of the source (quick runs, tests). */
  limit?: number;
  /** Drop the last partial batch (default: `protocol.dropLast`). */
  dropLast?: boolean;
}

/** A training loader. */
export interface TrainLoader {
  /** Batches per epoch (after drop_last). */
  readonly batchesPerEpoch: number;
  /** Images used per epoch (after `limit`). */
  readonly count: number;
  /** The compiled augmentation pipeline. */
  readonly pipeline: AugmentPipeline;
  /**
   * The batches of epoch `e` (0-based), from `startBatch` on. The caller owns each batch's tensors
   * (`x`, `yA`, `yB`) and disposes them. The next batch's images are read while this one is used.
   */
  epoch(e: number, startBatch?: number): AsyncIterable<TrainBatch>;
  /** Where the loader is: resume with `epoch(state.epoch, state.nextBatch)` and the same seed. */
  rngState(): LoaderState;
  /** The epoch's sample order (indices into the source), for tests and logs. */
  order(e: number): Int32Array;
}

/** Options of {@link createEvalLoader}. */
export interface EvalLoaderOptions {
  source: ImageSource;
  protocol: DatasetProtocol;
  /** Fixed batch size (default `protocol.testBatch`). */
  batchSize?: number;
  imageSize: number;
  limit?: number;
}

/** An evaluation loader (fixed order, padded last batch). */
export interface EvalLoader {
  readonly batches: number;
  readonly count: number;
  readonly pipeline: AugmentPipeline;
  /** All batches in source order; the caller disposes each `x`. */
  batchesIter(): AsyncIterable<EvalBatch>;
  /** Same as {@link EvalLoader.batchesIter}: `for await (const b of loader)`. */
  [Symbol.asyncIterator](): AsyncIterator<EvalBatch>;
}

function checkCommon(source: ImageSource, batchSize: number, imageSize: number, limit?: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new UserError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw new UserError(`image size must be a positive integer, got ${imageSize}`);
  }
  if (source.channels !== 1 && source.channels !== 3) {
    throw new UserError(`image source has ${source.channels} channels; the loader takes 1 (grey) or 3 (RGB)`);
  }
  const count = limit === undefined ? source.count : Math.min(source.count, Math.max(0, Math.floor(limit)));
  if (count < 1) throw new UserError("image source is empty");
  if (source.sourceSizes && source.sourceSizes.length < 2 * source.count) {
    throw new UserError(
      `image source has ${
        source.sourceSizes.length / 2
      } source sizes for ${source.count} images; rebuild the cache`,
    );
  }
  return count;
}

/** Seed of the generator of (seed, epoch, slot); slot 0 is the order, slot k+1 batch k. */
function derivedSeed(seed: number, epoch: number, slot: number): number {
  const a = new Rng(seed).nextUint32();
  const b = new Rng(a * 1048576 + (epoch % 1048576)).nextUint32();
  return b * 1048576 + (slot % 1048576);
}

interface Prepared {
  pixels: Uint8Array;
  labels: Int32Array;
  valid: number;
  plan: BatchPlan;
}

/**
 * A training loader over `source` with `protocol`'s training transforms at `imageSize`.
 * Throws UserError on bad sizes, an empty source, or an unsupported transform order.
 */
export function createTrainLoader(o: TrainLoaderOptions): TrainLoader {
  const { source, protocol, batchSize: B, imageSize: S, seed } = o;
  const count = checkCommon(source, B, S, o.limit);
  const dropLast = o.dropLast ?? protocol.dropLast;
  const cutmix = o.cutmix ?? protocol.cutmix;
  const full = Math.floor(count / B);
  const batchesPerEpoch = dropLast ? full : Math.ceil(count / B);
  if (batchesPerEpoch < 1) {
    throw new UserError(
      `${count} training images give no batch of ${B} with drop_last; use a smaller batch size`,
    );
  }
  const pipeline = compileTrain(protocol, source.height, source.width, S);
  const imageBytes = source.height * source.width * source.channels;
  const shape = { n: B, height: source.height, width: source.width, channels: source.channels };
  // Two pixel buffers: one being read for batch k+1 while batch k's is uploaded.
  const buffers = [
    new Uint8Array(Math.ceil(B * imageBytes / 4) * 4),
    new Uint8Array(Math.ceil(B * imageBytes / 4) * 4),
  ];
  const state: LoaderState = { seed, epoch: 0, nextBatch: 0 };

  const order = (e: number) => new Rng(derivedSeed(seed, e, 0)).permutation(count);

  async function prepare(ord: Int32Array, e: number, k: number): Promise<Prepared> {
    const start = k * B;
    const valid = Math.min(B, count - start);
    const idx = new Int32Array(B);
    for (let i = 0; i < B; i++) idx[i] = ord[i < valid ? start + i : (i - valid) % count];
    const pixels = buffers[k % 2];
    await source.readImages(idx, pixels);
    const labels = new Int32Array(B);
    for (let i = 0; i < B; i++) labels[i] = source.labels[idx[i]];
    const rng = new Rng(derivedSeed(seed, e, k + 1));
    const plan = planTrainBatch(pipeline, rng, source, B, valid, cutmix, originalSizes(source, idx));
    return { pixels, labels, valid, plan };
  }

  async function* epoch(e: number, startBatch = 0): AsyncGenerator<TrainBatch> {
    if (!Number.isInteger(e) || e < 0) throw new RangeError(`epoch must be a non-negative integer, got ${e}`);
    const ord = order(e);
    state.epoch = e;
    state.nextBatch = startBatch;
    if (startBatch >= batchesPerEpoch) return;
    let next = prepare(ord, e, startBatch);
    // A consumer that stops early abandons the prefetch; its failure must not become unhandled.
    next.catch(() => {});
    for (let k = startBatch; k < batchesPerEpoch; k++) {
      const cur = await next;
      const x = augmentTrainBatch(pipeline, cur.plan, cur.pixels, shape);
      if (k + 1 < batchesPerEpoch) {
        next = prepare(ord, e, k + 1);
        next.catch(() => {});
      }
      const cm = cur.plan.cutmix;
      let yBArr = cur.labels;
      if (cm) {
        yBArr = new Int32Array(B);
        for (let i = 0; i < B; i++) yBArr[i] = cur.labels[cm.perm[i]];
      }
      const yA = tf.tensor1d(cur.labels, "int32");
      const yB = tf.tensor1d(yBArr, "int32");
      state.nextBatch = k + 1;
      yield { x, yA, yB, lambda: cm ? cm.lambda : 1, valid: cur.valid };
    }
  }

  return {
    batchesPerEpoch,
    count,
    pipeline,
    epoch,
    rngState: () => ({ ...state }),
    order,
  };
}

/** An evaluation loader over `source` with `protocol`'s test transforms at `imageSize`. */
export function createEvalLoader(o: EvalLoaderOptions): EvalLoader {
  const B = o.batchSize ?? o.protocol.testBatch;
  const { source, imageSize: S } = o;
  const count = checkCommon(source, B, S, o.limit);
  const batches = Math.ceil(count / B);
  const pipeline = compileEval(o.protocol, source.height, source.width, S);
  const imageBytes = source.height * source.width * source.channels;
  const shape = { n: B, height: source.height, width: source.width, channels: source.channels };
  const buffers = [
    new Uint8Array(Math.ceil(B * imageBytes / 4) * 4),
    new Uint8Array(Math.ceil(B * imageBytes / 4) * 4),
  ];

  async function prepare(
    k: number,
  ): Promise<{ pixels: Uint8Array; labels: Int32Array; valid: number; original?: OriginalSizes }> {
    const start = k * B;
    const valid = Math.min(B, count - start);
    const idx = new Int32Array(B);
    // Padding repeats the last real image: any real image would do, its outputs are ignored.
    for (let i = 0; i < B; i++) idx[i] = start + Math.min(i, valid - 1);
    const pixels = buffers[k % 2];
    await source.readImages(idx, pixels);
    const labels = new Int32Array(B);
    for (let i = 0; i < B; i++) labels[i] = source.labels[idx[i]];
    return { pixels, labels, valid, original: originalSizes(source, idx) };
  }

  async function* batchesIter(): AsyncGenerator<EvalBatch> {
    let next = prepare(0);
    next.catch(() => {});
    for (let k = 0; k < batches; k++) {
      const cur = await next;
      const x = augmentEvalBatch(pipeline, cur.pixels, shape, cur.original);
      if (k + 1 < batches) {
        next = prepare(k + 1);
        next.catch(() => {});
      }
      yield { x, labels: cur.labels, valid: cur.valid };
    }
  }

  return { batches, count, pipeline, batchesIter, [Symbol.asyncIterator]: () => batchesIter() };
}
