/**
 * `deno task eval --weights W.safetensors --model M --dataset D`: test-set top-1/top-5 accuracy,
 * loss and confusion matrix of weights `train` wrote (PyTorch names and layouts). The test pipeline
 * is the run's own: the preset stored in the weights' metadata (image size, normalisation, test
 * limit) unless flags override it, so the top-1 equals the last epoch's test accuracy of the run.
 *
 * @module
 */
import { assertWritableDir, choiceFlag, intFlag, parseCli, writeOutputs } from "../runtime/cli.ts";
import { runMain, UsageError, UserError } from "../runtime/errors.ts";
import { formatCsv } from "../runtime/csv.ts";
import { Rng } from "../runtime/rng.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import "../models/zoo.ts";
import { buildModel, modelSpec } from "../models/registry.ts";
import { largestActivation } from "../models/inspect.ts";
import type { KernelChoice, ModelOptions } from "../models/core.ts";
import { defaultCacheDir, getDataset } from "../data/datasets.ts";
import { openCache } from "../data/cache/mod.ts";
import { applyOverrides, buildPreset, type Preset } from "../train/presets.ts";
import { loadStateDict, readWeightsFile } from "../train/weights.ts";
import { type EvalResult, evaluateModel } from "../train/evaluate.ts";
import { evalBatchSize, openTestLoader } from "../train/source.ts";

const USAGE = `deno task eval --weights W.safetensors --model M --dataset D [options]

Test-set accuracy (top-1, top-5), cross-entropy loss and the confusion matrix of trained weights
(a weights.safetensors or best.safetensors written by deno task train). The test pipeline is the
run's preset, read from the file's metadata; flags override it.

  --weights FILE     safetensors with PyTorch state_dict names (required)
  --model M          model id (required; must be the architecture of the weights)
  --dataset D        dataset id (required; its cache must be prepared: deno task prepare)
  --image-size S     input size (default: the run's)
  --test-limit N|all evaluate the first N test images, or all (default: the run's limit)
  --batch-size B     evaluation batch (default: as train chooses it)
  --preset P         preset for weights without metadata (default paper)
  --kernels K        custom (default) | stock
  --out DIR          where eval.json and confusion.csv go (default results/eval/<run folder>)
  --help             this text`;

interface Options {
  weights: string;
  model: string;
  dataset: string;
  imageSize?: number;
  testLimit?: number | "all";
  batchSize?: number;
  preset: string;
  kernels: KernelChoice;
  out?: string;
}

function parseOptions(args: string[]): Options {
  const { values: v } = parseCli(args, {
    usage: USAGE,
    options: {
      weights: { type: "string" },
      model: { type: "string" },
      dataset: { type: "string" },
      "image-size": { type: "string" },
      "test-limit": { type: "string" },
      "batch-size": { type: "string" },
      preset: { type: "string" },
      kernels: { type: "string" },
      out: { type: "string" },
    },
  });
  for (const k of ["weights", "model", "dataset"] as const) {
    if (!v[k]) throw new UsageError(`--${k} is required`, USAGE);
  }
  return {
    weights: v.weights!,
    model: v.model!,
    dataset: v.dataset!,
    imageSize: intFlag(v["image-size"], "image-size", USAGE, { min: 1 }),
    testLimit: v["test-limit"] === "all" ? "all" : intFlag(v["test-limit"], "test-limit", USAGE, { min: 1 }),
    batchSize: intFlag(v["batch-size"], "batch-size", USAGE, { min: 1 }),
    preset: v.preset ?? "paper",
    kernels: choiceFlag(v.kernels, "kernels", ["custom", "stock"] as const, USAGE) ?? "custom",
    out: v.out,
  };
}

/** The preset a run stored in its weights (`run` metadata: the preset plus its seed), if any. */
function storedPreset(metadata: Record<string, string>): (Preset & { seed?: number }) | undefined {
  if (!metadata.run) return undefined;
  try {
    const p = JSON.parse(metadata.run);
    return p && typeof p === "object" && typeof p.imageSize === "number" && p.data ? p : undefined;
  } catch {
    return undefined;
  }
}

/** What an evaluation measured and where it wrote it. */
export interface EvalRun {
  result: EvalResult;
  preset: Preset;
  classNames: string[];
  written: string[];
}

/** Runs the eval task with command-line `args` (`--help` throws HelpRequested; runMain prints the usage). */
export async function main(args: string[], log: (line: string) => void = console.log): Promise<EvalRun> {
  const o = parseOptions(args);
  const runFolder = o.weights.includes("/") ? o.weights.slice(0, o.weights.lastIndexOf("/")) : ".";
  const out = (o.out ?? `results/eval/${runFolder.split("/").pop() || "weights"}`).replace(/\/+$/, "");
  await assertWritableDir(out, "--out", "eval", ["results"]);
  const info = getDataset(o.dataset);
  modelSpec(o.model);
  const { tensors, metadata } = await readWeightsFile(o.weights);
  const stored = storedPreset(metadata);
  if (stored && stored.model !== o.model) {
    throw new UserError(
      `${o.weights}: written by a ${stored.model} run, not ${o.model}; pass --model ${stored.model}`,
    );
  }
  let preset: Preset = stored && stored.dataset === info.id
    ? stored
    : buildPreset(stored?.name ?? o.preset, o.model, info.id);
  if (stored && stored.dataset !== info.id) preset = applyOverrides(preset, { imageSize: stored.imageSize });
  preset = applyOverrides(preset, {
    imageSize: o.imageSize,
    testLimit: o.testLimit === "all" ? undefined : o.testLimit,
  });
  if (o.testLimit === "all") preset = { ...preset, testLimit: undefined };

  // The cache the run's preset trained on (named ImageFolders, Stanford Dogs' reference JPEG cache).
  const cache = await openCache(defaultCacheDir(o.dataset, preset.name));
  const classNames = cache.manifest.classNames;
  const numClasses = info.numClasses ?? cache.manifest.numClasses;
  const facts = await initRuntime();
  const modelOptions: ModelOptions = {
    ...preset.modelOptions,
    numClasses,
    imageSize: preset.imageSize,
    seed: 0,
  };
  // train's rule (train/source.ts), so the batches — and the accuracy — are train's.
  const evalBatch = o.batchSize ??
    evalBatchSize(
      preset,
      largestActivation(o.model, modelOptions, 1).elements * 4,
      facts.limits.maxStorageBufferBindingSize,
    );
  const model = buildModel(o.model, modelOptions);
  try {
    loadStateDict(model.params, tensors, o.weights);
    const loader = await openTestLoader(cache, preset, evalBatch);
    log(
      `${o.model} from ${o.weights} on ${info.id} test (${loader.count} images, ${preset.imageSize} px), ${facts.description}`,
    );
    const t0 = performance.now();
    const result = await evaluateModel(model, loader.batchesIter(), numClasses, {
      training: false,
      rng: new Rng(0),
      kernels: o.kernels,
    });
    const seconds = (performance.now() - t0) / 1000;
    const confusion = formatCsv(
      ["true \\ predicted", ...classNames],
      result.confusion.map((row, t) => [classNames[t] ?? String(t), ...row]),
    );
    const summary = {
      weights: o.weights,
      model: o.model,
      dataset: info.id,
      images: result.images,
      top1: result.top1,
      top5: result.top5,
      loss: result.loss,
      correct: result.correct,
      image_size: preset.imageSize,
      test_limit: preset.testLimit ?? null,
      kernels: o.kernels,
      adapter: facts.description,
      seconds,
      evaluated_at: new Date().toISOString(),
    };
    const written = await writeOutputs(out, [
      ["eval.json", JSON.stringify(summary, null, 1) + "\n"],
      ["confusion.csv", confusion],
    ]);
    log(
      `top-1 ${result.top1.toFixed(2)}% (${result.correct}/${result.images})` +
        (result.top5 === null ? "" : `  top-5 ${result.top5.toFixed(2)}%`) +
        `  loss ${result.loss.toFixed(4)}  ${seconds.toFixed(1)} s`,
    );
    log(`wrote ${out}/eval.json, ${out}/confusion.csv`);
    return { result, preset, classNames, written };
  } finally {
    model.params.dispose();
    cache.close();
  }
}

if (import.meta.main) await runMain(async () => void await main(Deno.args));
