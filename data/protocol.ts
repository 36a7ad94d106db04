/**
 * Per-dataset data protocols as data: the transform lists of the reference code (docs/protocol.md
 * §2.2), the paper's uniform protocol, and the two extra datasets (Fashion-MNIST, ImageFolder).
 * The loader (data/loader.ts) compiles these lists into GPU augmentation plans (data/augment/).
 *
 * Sizes inside the ops are in the protocol's own pixels (`inputSize` is the model input they were
 * written for). A run at another image size S scales every Resize/CenterCrop size by
 * S / inputSize (rounded) and crops to S, so e.g. Imagenette's Resize(192) → CenterCrop(160)
 * becomes Resize(38) → CenterCrop(32) at 32 px. RandAugment's translate magnitude follows the
 * actual image size, as torchvision computes it from the image.
 *
 * Ops apply to the *stored* cache image (data/cache/), which the prepare step may already have
 * resized (e.g. HAM10000 is stored at 224×224, so its Resize((224,224)) is an identity there).
 * Exception: datasets whose cache stretches each whole original to a square (Imagenette, flag
 * `sourceGeometry` in data/datasets.ts) have their crop and Resize/CenterCrop boxes drawn on the
 * original width × height and mapped onto the stored square, so aspect ratios stay faithful.
 *
 * @module
 */
import { UserError } from "../runtime/errors.ts";

/** torchvision `RandomResizedCrop(S, scale, ratio)`; the output size is the run's image size. */
export interface RandomResizedCropOp {
  op: "randomResizedCrop";
  scale: [number, number];
  ratio: [number, number];
}

/** torchvision `Resize`: an int resizes the short side (long = int(n·long/short)); a pair is (h, w). */
export interface ResizeOp {
  op: "resize";
  size: number | [number, number];
}

/** torchvision `CenterCrop(n)`: top = round((H−n)/2), left = round((W−n)/2). */
export interface CenterCropOp {
  op: "centerCrop";
  size: number;
}

/** torchvision `RandomHorizontalFlip(p)`. */
export interface HFlipOp {
  op: "hflip";
  p: number;
}

/** torchvision `ColorJitter(brightness, contrast, saturation, hue)` (PIL semantics, random order). */
export interface ColorJitterOp {
  op: "colorJitter";
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** torchvision `RandAugment(numOps, magnitude, numMagnitudeBins)`, nearest interpolation, fill 0. */
export interface RandAugmentOp {
  op: "randAugment";
  numOps: number;
  magnitude: number;
  numMagnitudeBins: number;
}

/** torchvision `RandomErasing(p, scale, ratio, value=0)`, applied to the normalised tensor. */
export interface RandomErasingOp {
  op: "randomErasing";
  p: number;
  scale: [number, number];
  ratio: [number, number];
}

/** One training transform. Order rules: geometric ops first, then flip, then colour ops, erasing last. */
export type TrainOp =
  | RandomResizedCropOp
  | ResizeOp
  | CenterCropOp
  | HFlipOp
  | ColorJitterOp
  | RandAugmentOp
  | RandomErasingOp;

/** One evaluation transform (deterministic). */
export type EvalOp = ResizeOp | CenterCropOp;

/** Everything the data side of a run needs to know about one dataset. */
export interface DatasetProtocol {
  /** Canonical dataset id (score/xscore.ts CANONICAL_DATASETS, plus "imagefolder"). */
  dataset: string;
  /** "reference" (as coded, docs/protocol.md §2.2) or "paper" (the paper's uniform pipeline). */
  preset: "reference" | "paper";
  /** Model input size the op sizes are written for. */
  inputSize: number;
  /** Training transforms in order (ToTensor + Normalize are implicit after the colour ops). */
  train: TrainOp[];
  /** Evaluation transforms in order (then Normalize). */
  test: EvalOp[];
  /** Normalisation mean per RGB channel (grey sources are replicated to RGB first). */
  mean: [number, number, number];
  /** Normalisation std per RGB channel. */
  std: [number, number, number];
  /** Training batch size of the reference scripts (the trainer may override it). */
  trainBatch: number;
  /** Evaluation batch size (only affects speed). */
  testBatch: number;
  /** Whether the training loader drops the last partial batch (else it is padded, `valid` < B). */
  dropLast: boolean;
  /** CutMix (α = 1, every batch, raw λ) on every training batch. */
  cutmix: boolean;
  /** Provenance and deviations, one line each. */
  notes: string[];
}

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
/** MIT Indoor-67 and MiniPlaces scripts write 0.22 for the blue std (sic, docs/protocol.md §2.2). */
const IMAGENET_STD_SIC: [number, number, number] = [0.229, 0.224, 0.22];
const FMNIST_MEAN: [number, number, number] = [0.2860, 0.2860, 0.2860];
const FMNIST_STD: [number, number, number] = [0.3530, 0.3530, 0.3530];

const flip: HFlipOp = { op: "hflip", p: 0.5 };
const jitter: ColorJitterOp = {
  op: "colorJitter",
  brightness: 0.2,
  contrast: 0.3,
  saturation: 0.3,
  hue: 0.2,
};
const randAug: RandAugmentOp = { op: "randAugment", numOps: 2, magnitude: 10, numMagnitudeBins: 31 };
const rrcSquare: RandomResizedCropOp = { op: "randomResizedCrop", scale: [0.9, 1.1], ratio: [1, 1] };
const rrcDefault: RandomResizedCropOp = { op: "randomResizedCrop", scale: [0.9, 1.1], ratio: [3 / 4, 4 / 3] };
const erasing: RandomErasingOp = { op: "randomErasing", p: 0.25, scale: [0.02, 0.33], ratio: [0.3, 3.3] };

/** Resize(224) → CenterCrop(224): the evaluation transform of most reference scripts. */
const resizeCenterCrop224: EvalOp[] = [{ op: "resize", size: 224 }, { op: "centerCrop", size: 224 }];
/** Resize((224, 224)): the squashing resize of the scripts that do not crop. */
const squash224: EvalOp[] = [{ op: "resize", size: [224, 224] }];

/** A reference protocol; unless the entry says otherwise: 224 px, batch 32 for train and test, no drop_last. */
function ref(
  p:
    & Omit<
      DatasetProtocol,
      "preset" | "cutmix" | "notes" | "inputSize" | "trainBatch" | "testBatch" | "dropLast"
    >
    & Partial<Pick<DatasetProtocol, "notes" | "inputSize" | "trainBatch" | "testBatch" | "dropLast">>,
): DatasetProtocol {
  return {
    preset: "reference",
    cutmix: true,
    notes: [],
    inputSize: 224,
    trainBatch: 32,
    testBatch: 32,
    dropLast: false,
    ...p,
  };
}

/** The reference code's protocols (docs/protocol.md §2.2), keyed by dataset id. */
export const REFERENCE_PROTOCOLS: Readonly<Record<string, DatasetProtocol>> = {
  "cifar10": ref({
    dataset: "cifar10",
    train: [rrcSquare, flip, randAug, jitter],
    test: resizeCenterCrop224,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.2471, 0.2435, 0.2616],
    testBatch: 50,
    notes: ["train batch 64 for ConvMixer/EfficientNet/FBNet/GhostNet/ShuffleNet scripts, 32 otherwise"],
  }),
  "imagenette160": ref({
    dataset: "imagenette160",
    inputSize: 160,
    train: [rrcDefault, flip, jitter, randAug],
    test: [{ op: "resize", size: 192 }, { op: "centerCrop", size: 160 }],
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    testBatch: 50,
    notes: ["ColorJitter before RandAugment (the only dataset with that order)"],
  }),
  "cifar100": ref({
    dataset: "cifar100",
    train: [rrcSquare, flip, randAug, jitter, erasing],
    test: resizeCenterCrop224,
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
  }),
  "ham10000": ref({
    dataset: "ham10000",
    train: [...squash224, flip],
    test: squash224,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    testBatch: 100,
    dropLast: true,
  }),
  "stanford-dogs": ref({
    dataset: "stanford-dogs",
    train: [rrcDefault, flip, jitter],
    test: [{ op: "centerCrop", size: 224 }],
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    dropLast: true,
    notes: [
      "from the cached 256x256 images; no RandAugment",
      "the reference re-encodes the cache as JPEG q75 after a truncating float->uint8 round trip; not reproduced",
    ],
  }),
  "mit-indoor67": ref({
    dataset: "mit-indoor67",
    train: [rrcSquare, flip, randAug, jitter],
    test: resizeCenterCrop224,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD_SIC,
    notes: [
      "stored as the largest centred square, which is what RRC ratio (1,1) falls back to on non-square images",
    ],
  }),
  "miniplaces": ref({
    dataset: "miniplaces",
    train: [rrcSquare, flip, randAug, jitter],
    test: resizeCenterCrop224,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD_SIC,
  }),
  "fashion-mnist": ref({
    dataset: "fashion-mnist",
    train: [...squash224, flip],
    test: squash224,
    mean: FMNIST_MEAN,
    std: FMNIST_STD,
    testBatch: 100,
    notes: [
      "not in the reference code: Resize to the run size + flip + CutMix (no colour ops on a grey source)",
      "grey replicated to RGB; mean 0.2860 / std 0.3530 (the usual Fashion-MNIST statistics) on each channel",
    ],
  }),
  "imagefolder": ref({
    dataset: "imagefolder",
    train: [...squash224, flip, jitter],
    test: squash224,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    notes: ["not in the reference code: the paper's uniform pipeline with ImageNet statistics"],
  }),
};

/** Dataset ids with a protocol. */
export const PROTOCOL_DATASETS: readonly string[] = Object.keys(REFERENCE_PROTOCOLS);

function lookup(dataset: string): DatasetProtocol {
  const p = REFERENCE_PROTOCOLS[dataset];
  if (!p) {
    throw new UserError(`no data protocol for dataset "${dataset}"; known: ${PROTOCOL_DATASETS.join(", ")}`);
  }
  return p;
}

/** The reference code's protocol for `dataset` (docs/protocol.md §2.2); throws UserError if unknown. */
export function referenceProtocol(dataset: string): DatasetProtocol {
  const p = lookup(dataset);
  return structuredClone(p);
}

/**
 * The paper's uniform protocol (§3: "resized to 224×224 … CutMix, RandomFlip, ColorJitter", batch 32):
 * Resize((224,224)) → HFlip(0.5) → ColorJitter(0.2, 0.3, 0.3, 0.2) → Normalize(dataset statistics),
 * CutMix on every batch; test: Resize((224,224)) → Normalize. The jitter strengths are the reference
 * code's (the paper names the op, not its parameters); mean/std and test batch are the dataset's.
 */
export function paperProtocol(dataset: string): DatasetProtocol {
  const p = lookup(dataset);
  // A copy, as referenceProtocol's: the caller owns every op and array it is given.
  return structuredClone<DatasetProtocol>({
    dataset,
    preset: "paper",
    inputSize: 224,
    train: [...squash224, flip, jitter],
    test: squash224,
    mean: p.mean,
    std: p.std,
    trainBatch: 32,
    testBatch: p.testBatch,
    dropLast: false,
    cutmix: true,
    notes: ["paper §3: uniform 224x224, CutMix + RandomFlip + ColorJitter, batch 32"],
  });
}

/** The protocol of `preset` for `dataset`. */
export function protocolFor(dataset: string, preset: "reference" | "paper"): DatasetProtocol {
  return preset === "paper" ? paperProtocol(dataset) : referenceProtocol(dataset);
}
