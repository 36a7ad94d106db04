/**
 * Loader + GPU augmentation throughput (images/s), for `deno task bench:data`: a synthetic uint8
 * source (or an opened cache split) through {@link createTrainLoader} at 224×224, batch 32, timed
 * over whole batches with one small readback at the end (a sync; no per-batch readback).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { assertGpuHealthy } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { createEvalLoader, createTrainLoader, type ImageSource } from "./loader.ts";
import { type DatasetProtocol, referenceProtocol } from "./protocol.ts";
import { compileTrain, planTrainBatch } from "./augment/mod.ts";

/** A synthetic in-memory source of `count` random uint8 images (labels i mod 10). */
export function syntheticSource(
  count: number,
  height: number,
  width: number,
  channels: number,
  seed = 0,
): ImageSource {
  const imageBytes = height * width * channels;
  const distinct = Math.min(count, 64);
  const pool = new Uint8Array(distinct * imageBytes);
  const rng = new Rng(seed);
  for (let i = 0; i < pool.length; i += 4) {
    const v = rng.nextUint32();
    pool[i] = v & 255;
    pool[i + 1] = (v >>> 8) & 255;
    pool[i + 2] = (v >>> 16) & 255;
    pool[i + 3] = v >>> 24;
  }
  return {
    count,
    height,
    width,
    channels,
    labels: Int32Array.from({ length: count }, (_, i) => i % 10),
    readImages(indices, out) {
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i] % distinct;
        out.set(pool.subarray(k * imageBytes, (k + 1) * imageBytes), i * imageBytes);
      }
    },
  };
}

/** Options of {@link benchLoader}. */
export interface BenchLoaderOptions {
  /** Label of the result line. */
  label?: string;
  /** Protocol (default: CIFAR-100 reference, the heaviest: RRC, flip, RandAugment, ColorJitter, erasing). */
  protocol?: DatasetProtocol;
  /** Image source (default: synthetic 32×32×3, as CIFAR in the cache). */
  source?: ImageSource;
  /** Output size (default 224). */
  imageSize?: number;
  /** Batch size (default 32). */
  batchSize?: number;
  /** Timed batches (default 8). */
  batches?: number;
  /** Untimed warm-up batches (pipeline compilation; default 2). */
  warmup?: number;
  /** Time the evaluation loader instead of the training loader. */
  eval?: boolean;
}

/** Result of {@link benchLoader}. */
export interface BenchLoaderResult {
  label: string;
  /** Source image shape. */
  source: { height: number; width: number; channels: number };
  imageSize: number;
  batchSize: number;
  batches: number;
  /** Loader + augmentation throughput, images per second (wall time, GPU synced at the end). */
  imagesPerSecond: number;
  /** Wall ms per batch. */
  msPerBatch: number;
  /** CPU-only part per batch (image reads + parameter drawing), ms. */
  cpuMsPerBatch: number;
}

/**
 * Measures loader + GPU augmentation throughput. Requires an initialised WebGPU runtime.
 * Each batch's tensors are disposed as a trainer would; the clock stops after the GPU finished.
 */
export async function benchLoader(o: BenchLoaderOptions = {}): Promise<BenchLoaderResult> {
  const protocol = o.protocol ?? referenceProtocol("cifar100");
  const S = o.imageSize ?? 224;
  const B = o.batchSize ?? 32;
  const batches = o.batches ?? 8;
  const warmup = o.warmup ?? 2;
  const source = o.source ?? syntheticSource(4096, 32, 32, 3);
  const total = warmup + batches;
  const limit = Math.min(source.count, total * B);

  let t0 = performance.now();
  let k = 0;
  let last: tf.Tensor | undefined;
  // Disposing the previous batch when the next arrives mimics a trainer; the pool reuses buffers.
  const step = async (x: tf.Tensor) => {
    last?.dispose();
    last = x;
    k++;
    if (k === warmup) {
      await sync(x);
      t0 = performance.now();
    }
  };
  if (o.eval) {
    const loader = createEvalLoader({ source, protocol, batchSize: B, imageSize: S, limit });
    for await (const b of loader.batchesIter()) {
      await step(b.x);
      if (k >= total) break;
    }
  } else {
    const loader = createTrainLoader({ source, protocol, batchSize: B, imageSize: S, seed: 1, limit });
    for (let e = 0; k < total; e++) {
      for await (const b of loader.epoch(e)) {
        tf.dispose([b.yA, b.yB]);
        await step(b.x);
        if (k >= total) break;
      }
    }
  }
  await sync(last!);
  last!.dispose();
  const wall = performance.now() - t0;
  const timed = k - warmup;
  assertGpuHealthy();

  // CPU-only share: the same reads and parameter draws without the GPU.
  const pipeline = compileTrain(protocol, source.height, source.width, S);
  const buf = new Uint8Array(B * source.height * source.width * source.channels);
  const rng = new Rng(2);
  const c0 = performance.now();
  for (let k = 0; k < batches; k++) {
    const idx = Int32Array.from({ length: B }, (_, i) => (k * B + i) % source.count);
    await source.readImages(idx, buf);
    if (!o.eval) planTrainBatch(pipeline, rng, source, B, B, protocol.cutmix);
  }
  const cpu = (performance.now() - c0) / batches;

  const msPerBatch = wall / timed;
  return {
    label: o.label ?? `${protocol.preset}:${protocol.dataset}${o.eval ? " (eval)" : ""}`,
    source: { height: source.height, width: source.width, channels: source.channels },
    imageSize: S,
    batchSize: B,
    batches: timed,
    imagesPerSecond: B * 1000 / msPerBatch,
    msPerBatch,
    cpuMsPerBatch: cpu,
  };
}

/** Waits until `x` is computed (reads back one element). */
async function sync(x: tf.Tensor): Promise<void> {
  const flat = x.reshape([-1]);
  const one = tf.slice(flat, 0, 1);
  await one.data();
  tf.dispose([flat, one]);
}
