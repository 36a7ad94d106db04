/**
 * CIFAR-10 / CIFAR-100 readers for both official distributions:
 * - binary: `cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin` (records of 1 label byte
 *   + 3,072 planar R/G/B bytes) and `cifar-100-binary/{train,test}.bin` (2 label bytes, coarse then
 *   fine, + 3,072 bytes); names in `batches.meta.txt` / `fine_label_names.txt`;
 * - python: `cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}` and
 *   `cifar-100-python/{train,test,meta}`, pickled dicts read by the data-only reader in pickle.ts.
 * CIFAR-100 uses the fine labels (as the paper's code). Images are stored 32x32x3 as-is.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import { planarToInterleaved, type StorageSpec } from "../images.ts";
import { arraySplit, type DatasetSource, type ReaderOptions, readLines, statOrUndefined } from "./common.ts";
import { dictGet, intList, isNdArray, readPickle, stringList } from "./pickle.ts";
import { readFileBounded } from "../../runtime/cli.ts";

/** The largest CIFAR file read (the CIFAR-100 python train pickle is ~160 MB). */
const MAX_CIFAR_FILE_BYTES = 1024 * 2 ** 20;

const STORAGE: StorageSpec = { height: 32, width: 32, channels: 3, fit: "stretch" };
const RECORD_PIXELS = 3072;

/** CIFAR-10 class names (also in batches.meta), used when the meta file is absent. */
export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

interface Layout {
  kind: "bin" | "py";
  dir: string;
}

async function findLayout(root: string, variant: 10 | 100): Promise<Layout> {
  const candidates: Layout[] = variant === 10
    ? [
      { kind: "bin", dir: join(root, "cifar-10-batches-bin") },
      { kind: "py", dir: join(root, "cifar-10-batches-py") },
      { kind: "bin", dir: root },
      { kind: "py", dir: root },
    ]
    : [
      { kind: "bin", dir: join(root, "cifar-100-binary") },
      { kind: "py", dir: join(root, "cifar-100-python") },
      { kind: "bin", dir: root },
      { kind: "py", dir: root },
    ];
  const marker = (l: Layout) =>
    variant === 10
      ? (l.kind === "bin" ? "data_batch_1.bin" : "data_batch_1")
      : (l.kind === "bin" ? "train.bin" : "train");
  for (const l of candidates) {
    if ((await statOrUndefined(join(l.dir, marker(l))))?.isFile) return l;
  }
  throw new UserError(
    variant === 10
      ? `expected cifar-10-batches-bin/data_batch_1.bin or cifar-10-batches-py/data_batch_1 in ${root}; ` +
        `extract the official CIFAR-10 binary or python archive there`
      : `expected cifar-100-binary/train.bin or cifar-100-python/train in ${root}; ` +
        `extract the official CIFAR-100 binary or python archive there`,
  );
}

async function readRequired(path: string): Promise<Uint8Array> {
  try {
    return await readFileBounded(path, MAX_CIFAR_FILE_BYTES);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new UserError(`expected ${path}; the CIFAR archive is incomplete`);
    }
    throw err;
  }
}

/** Pixels of many batch files concatenated: record `i` of the split is in part `p`, row `r`. */
interface Part {
  file: string;
  pixels: Uint8Array;
  labels: Int32Array;
  /** Bytes from one record's start to the next, and offset of the pixels in a record. */
  stride: number;
  offset: number;
}

function joinParts(name: string, parts: Part[], numClasses: number) {
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const labels = new Int32Array(n);
  const partOf = new Int32Array(n);
  const rowOf = new Int32Array(n);
  let k = 0;
  parts.forEach((p, pi) => {
    for (let r = 0; r < p.labels.length; r++, k++) {
      const y = p.labels[r];
      if (y < 0 || y >= numClasses) {
        throw new UserError(`${p.file}: record ${r} has label ${y}, expected 0..${numClasses - 1}`);
      }
      labels[k] = y;
      partOf[k] = pi;
      rowOf[k] = r;
    }
  });
  return arraySplit(
    name,
    labels,
    STORAGE,
    (i) => {
      const p = parts[partOf[i]];
      const start = rowOf[i] * p.stride + p.offset;
      return planarToInterleaved(p.pixels.subarray(start, start + RECORD_PIXELS), 3, 32, 32);
    },
    (i) => `${parts[partOf[i]].file}#${rowOf[i]}`,
  );
}

async function binPart(dir: string, file: string, labelBytes: 1 | 2): Promise<Part> {
  const bytes = await readRequired(join(dir, file));
  const stride = labelBytes + RECORD_PIXELS;
  if (bytes.length === 0 || bytes.length % stride !== 0) {
    throw new UserError(
      `${join(dir, file)}: size ${bytes.length} is not a multiple of ${stride}-byte CIFAR records`,
    );
  }
  const n = bytes.length / stride;
  const labels = new Int32Array(n);
  // CIFAR-100 records are <coarse><fine><pixels>; the fine label is the second byte.
  for (let i = 0; i < n; i++) labels[i] = bytes[i * stride + labelBytes - 1];
  return { file, pixels: bytes, labels, stride, offset: labelBytes };
}

async function pyPart(dir: string, file: string, labelKey: string): Promise<Part> {
  const path = join(dir, file);
  const bytes = await readRequired(path);
  let obj;
  try {
    obj = readPickle(bytes, path);
    const data = dictGet(obj, "data", path);
    if (
      !isNdArray(data) || data.dtype !== "u1" || data.shape.length !== 2 || data.shape[1] !== RECORD_PIXELS
    ) {
      throw new Error(`${path}: "data" is not a uint8 array of shape [N, 3072]`);
    }
    if (data.fortran) throw new Error(`${path}: "data" is Fortran-ordered; expected C order`);
    const labels = intList(dictGet(obj, labelKey, path), path);
    if (labels.length !== data.shape[0]) {
      throw new Error(`${path}: ${labels.length} labels for ${data.shape[0]} images`);
    }
    if (data.data.length !== data.shape[0] * RECORD_PIXELS) {
      throw new Error(`${path}: "data" has the wrong length`);
    }
    return { file, pixels: data.data, labels, stride: RECORD_PIXELS, offset: 0 };
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${(err as Error).message}; expected the official CIFAR python pickle`);
  }
}

async function names(
  layout: Layout,
  variant: 10 | 100,
  n: number,
): Promise<{ names: string[]; note?: string }> {
  const fallback = (why: string) => ({
    names: variant === 10 ? CIFAR10_CLASSES : Array.from({ length: n }, (_, i) => `class_${i}`),
    note: `class names: ${why}`,
  });
  if (layout.kind === "bin") {
    const file = join(layout.dir, variant === 10 ? "batches.meta.txt" : "fine_label_names.txt");
    if (!(await statOrUndefined(file))) return fallback(`${file} absent, built-in names used`);
    const lines = (await readLines(file)).map((l) => l.text);
    if (lines.length !== n) throw new UserError(`${file}: ${lines.length} names, expected ${n}`);
    return { names: lines };
  }
  const file = join(layout.dir, variant === 10 ? "batches.meta" : "meta");
  if (!(await statOrUndefined(file))) return fallback(`${file} absent, built-in names used`);
  try {
    const meta = readPickle(await readFileBounded(file, MAX_CIFAR_FILE_BYTES), file);
    const list = stringList(dictGet(meta, variant === 10 ? "label_names" : "fine_label_names", file), file);
    if (list.length !== n) throw new Error(`${file}: ${list.length} names, expected ${n}`);
    return { names: list };
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

/** Opens CIFAR-10 (binary or python version) under `opts.root`. */
export function openCifar10(opts: ReaderOptions): Promise<DatasetSource> {
  return openCifar(opts.root, 10, (bin) => ({
    train: [1, 2, 3, 4, 5].map((k) => `data_batch_${k}${bin ? ".bin" : ""}`),
    test: bin ? "test_batch.bin" : "test_batch",
  }));
}

/** Opens CIFAR-100 (binary or python version) under `opts.root`, with the fine labels. */
export function openCifar100(opts: ReaderOptions): Promise<DatasetSource> {
  return openCifar(opts.root, 100, (bin) => (bin ? { train: ["train.bin"], test: "test.bin" } : {
    train: ["train"],
    test: "test",
  }));
}

/**
 * Either CIFAR in either layout: `files` names the training parts and the test part. A binary
 * record's label is its first byte (CIFAR-10) or its second, the fine label (CIFAR-100); the pickles
 * hold `labels` or `fine_labels`.
 */
async function openCifar(
  root: string,
  classes: 10 | 100,
  files: (bin: boolean) => { train: string[]; test: string },
): Promise<DatasetSource> {
  const layout = await findLayout(root, classes);
  const bin = layout.kind === "bin";
  const { train: trainFiles, test: testFile } = files(bin);
  const part = (f: string) =>
    bin
      ? binPart(layout.dir, f, classes === 10 ? 1 : 2)
      : pyPart(layout.dir, f, classes === 10 ? "labels" : "fine_labels");
  const train = await Promise.all(trainFiles.map(part));
  const test = [await part(testFile)];
  const meta = await names(layout, classes, classes);
  return {
    id: `cifar${classes}`,
    format: `cifar-${classes} ${bin ? "binary" : "python pickle"}`,
    root: layout.dir,
    classNames: meta.names,
    storage: STORAGE,
    splits: [joinParts("train", train, classes), joinParts("test", test, classes)],
    sourceFiles: [...trainFiles, testFile].map((f) => join(layout.dir, f)),
    options: {},
    notes: [...(classes === 100 ? ["fine labels (0-99)"] : []), ...(meta.note ? [meta.note] : [])],
  };
}
