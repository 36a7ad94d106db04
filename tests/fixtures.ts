/**
 * Fixture generators writing tiny datasets in the exact official on-disk formats (CIFAR binary
 * records, Python 2 cPickle protocol 2 with numpy arrays, gzipped IDX, MATLAB v5 with compressed
 * elements, CSV/TXT lists, JPEG/PNG/GIF files written with sharp). Each returns the ground truth
 * it wrote, so tests compare readers against values that never went through the readers.
 *
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { Rng } from "../runtime/rng.ts";
import { IMAGENETTE_WNIDS } from "../data/synthetic.ts";

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Deterministic pseudo-random bytes. */
export function randomBytes(seed: number, n: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextUint32() & 0xff;
  return out;
}

async function write(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
}

/** A solid RGB colour that encodes (class, index), far enough apart to survive JPEG. */
export function colorOf(label: number, k: number): [number, number, number] {
  return [30 + ((label * 70) % 200), 40 + ((k * 45) % 180), 200 - ((label * 30 + k * 15) % 160)];
}

/** Raw HWC RGB pixels of a solid colour. */
export function solid(w: number, h: number, rgb: readonly number[]): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(rgb, i * 3);
  return px;
}

/** Encodes raw RGB (or grey) pixels as JPEG / PNG / GIF with sharp. */
export async function encode(
  px: Uint8Array,
  w: number,
  h: number,
  format: "jpeg" | "png" | "gif",
  channels: 1 | 3 = 3,
): Promise<Uint8Array> {
  const img = sharp(px, { raw: { width: w, height: h, channels } });
  const out = format === "jpeg"
    ? await img.jpeg({ quality: 95, chromaSubsampling: "4:4:4" }).toBuffer()
    : format === "png"
    ? await img.png().toBuffer()
    : await img.gif().toBuffer();
  return new Uint8Array(out);
}

/** Bytes that no decoder accepts, and a JPEG cut in half: the two kinds of corrupt file. */
export async function corruptFiles(): Promise<{ garbage: Uint8Array; truncated: Uint8Array }> {
  const good = await encode(randomBytes(9, 32 * 32 * 3), 32, 32, "jpeg");
  return {
    garbage: new TextEncoder().encode("this is not an image\n"),
    truncated: good.slice(0, Math.floor(good.length / 2)),
  };
}

// ---------------------------------------------------------------------------------------------
// Python 2 cPickle protocol 2, as in the official CIFAR "python version" files

/** Emits pickle opcodes the way Python 2's cPickle does at protocol 2 (memoising with BINPUT). */
class Py2Pickler {
  parts: Uint8Array[] = [];
  memo = 1;
  byte(...b: number[]) {
    this.parts.push(Uint8Array.from(b));
  }
  u32(n: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    this.parts.push(b);
  }
  put() {
    this.byte(0x71, this.memo++ & 0xff); // BINPUT
  }
  /** A Python 2 str: SHORT_BINSTRING (< 256 bytes) or BINSTRING. */
  str(s: string | Uint8Array) {
    const b = typeof s === "string" ? Uint8Array.from(s, (c) => c.charCodeAt(0)) : s;
    if (b.length < 256) this.byte(0x55, b.length);
    else {
      this.byte(0x54);
      this.u32(b.length);
    }
    this.parts.push(b);
    this.put();
  }
  int(n: number) {
    if (n >= 0 && n < 256) this.byte(0x4b, n);
    else if (n >= 0 && n < 65536) this.byte(0x4d, n & 0xff, n >> 8);
    else {
      this.byte(0x4a);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, n, true);
      this.parts.push(b);
    }
  }
  global(module: string, name: string) {
    this.parts.push(new TextEncoder().encode(`c${module}\n${name}\n`));
    this.put();
  }
  /** A list, with APPENDS batched by 1000 as pickle does. */
  list(items: readonly (number | string)[]) {
    this.byte(0x5d);
    this.put();
    for (let i = 0; i < items.length; i += 1000) {
      this.byte(0x28);
      for (const v of items.slice(i, i + 1000)) typeof v === "number" ? this.int(v) : this.str(v);
      this.byte(0x65);
    }
  }
  /** numpy uint8 ndarray via numpy.core.multiarray._reconstruct + BUILD, as numpy 1.x on Python 2. */
  ndarrayU8(shape: number[], data: Uint8Array) {
    this.global("numpy.core.multiarray", "_reconstruct");
    this.global("numpy", "ndarray");
    this.int(0);
    this.byte(0x85); // TUPLE1
    this.put();
    this.str("b");
    this.byte(0x87, 0x52); // TUPLE3, REDUCE
    this.put();
    this.byte(0x28); // MARK: state tuple
    this.int(1);
    for (const d of shape) this.int(d);
    this.byte(shape.length === 2 ? 0x86 : 0x85);
    this.put();
    this.global("numpy", "dtype");
    this.str("u1");
    this.int(0);
    this.int(1);
    this.byte(0x87, 0x52);
    this.put();
    this.byte(0x28);
    this.int(3);
    this.str("|");
    this.byte(0x4e, 0x4e, 0x4e); // None x3
    this.int(-1);
    this.int(-1);
    this.int(0);
    this.byte(0x74, 0x62); // TUPLE, BUILD (dtype state)
    this.byte(0x89); // NEWFALSE: C order
    this.str(data);
    this.byte(0x74, 0x62); // TUPLE, BUILD (array state)
  }
}

/** Pickles a dict of str keys -> (uint8 2-D array | int list | str list | str) as Python 2 cPickle protocol 2. */
export function pickleDictPy2(
  entries: [string, { array: Uint8Array; shape: number[] } | number[] | string[] | string][],
): Uint8Array {
  const p = new Py2Pickler();
  p.byte(0x80, 0x02, 0x7d); // PROTO 2, EMPTY_DICT
  p.put();
  p.byte(0x28); // MARK
  for (const [k, v] of entries) {
    p.str(k);
    if (typeof v === "string") p.str(v);
    else if (Array.isArray(v)) p.list(v);
    else p.ndarrayU8(v.shape, v.array);
  }
  p.byte(0x75, 0x2e); // SETITEMS, STOP
  return concat(p.parts);
}

// ---------------------------------------------------------------------------------------------
// CIFAR

/** Ground truth of a generated CIFAR fixture: planar records and labels per split. */
export interface CifarTruth {
  /** Class names written to the meta file. */
  classNames: string[];
  /** Train split: labels (fine for CIFAR-100) and 3072-byte planar records. */
  train: { labels: number[]; records: Uint8Array[] };
  /** Test split. */
  test: { labels: number[]; records: Uint8Array[] };
}

function makeRecords(seed: number, n: number, numClasses: number) {
  const rng = new Rng(seed);
  const labels = Array.from({ length: n }, () => rng.int(0, numClasses - 1));
  const records = labels.map((_, i) => randomBytes(seed * 1000 + i, 3072));
  return { labels, records };
}

/**
 * Writes CIFAR-10 or CIFAR-100 in the binary (`-batches-bin` / `-binary`) or python
 * (`-batches-py` / `-python`) layout under `root`, `perBatch` images per training batch file
 * (CIFAR-10 has five), `testCount` test images.
 */
export async function writeCifar(
  root: string,
  variant: 10 | 100,
  kind: "bin" | "py",
  perBatch = 6,
  testCount = 5,
): Promise<CifarTruth> {
  const k = variant;
  const classNames = variant === 10
    ? ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    : Array.from({ length: 100 }, (_, i) => `fine${String(i).padStart(2, "0")}`);
  const nTrainFiles = variant === 10 ? 5 : 1;
  const trainParts = Array.from(
    { length: nTrainFiles },
    (_, f) => makeRecords(10 + f, perBatch * (variant === 10 ? 1 : 5), k),
  );
  const test = makeRecords(99, testCount, k);
  const coarse = (fine: number) => (fine * 7 + 3) % 20;
  const binFile = (part: { labels: number[]; records: Uint8Array[] }) =>
    concat(
      part.records.flatMap((
        r,
        i,
      ) => [
        Uint8Array.from(variant === 10 ? [part.labels[i]] : [coarse(part.labels[i]), part.labels[i]]),
        r,
      ]),
    );
  const pyFile = (part: { labels: number[]; records: Uint8Array[] }, name: string) =>
    pickleDictPy2([
      ["data", { array: concat(part.records), shape: [part.records.length, 3072] }],
      [variant === 10 ? "labels" : "fine_labels", part.labels],
      ...(variant === 100 ? [["coarse_labels", part.labels.map(coarse)] as [string, number[]]] : []),
      ["batch_label", name],
      ["filenames", part.labels.map((_, i) => `img_${i}.png`)],
    ]);
  if (variant === 10) {
    const dir = join(root, kind === "bin" ? "cifar-10-batches-bin" : "cifar-10-batches-py");
    for (let f = 0; f < 5; f++) {
      const name = `data_batch_${f + 1}`;
      await write(
        join(dir, kind === "bin" ? `${name}.bin` : name),
        kind === "bin" ? binFile(trainParts[f]) : pyFile(trainParts[f], name),
      );
    }
    await write(
      join(dir, kind === "bin" ? "test_batch.bin" : "test_batch"),
      kind === "bin" ? binFile(test) : pyFile(test, "test"),
    );
    if (kind === "bin") await write(join(dir, "batches.meta.txt"), classNames.join("\n") + "\n\n");
    else {
      await write(
        join(dir, "batches.meta"),
        pickleDictPy2([["num_cases_per_batch", [perBatch]], ["label_names", classNames], ["num_vis", [
          3072,
        ]]]),
      );
    }
  } else {
    const dir = join(root, kind === "bin" ? "cifar-100-binary" : "cifar-100-python");
    await write(
      join(dir, kind === "bin" ? "train.bin" : "train"),
      kind === "bin" ? binFile(trainParts[0]) : pyFile(trainParts[0], "train"),
    );
    await write(
      join(dir, kind === "bin" ? "test.bin" : "test"),
      kind === "bin" ? binFile(test) : pyFile(test, "test"),
    );
    const coarseNames = Array.from({ length: 20 }, (_, i) => `coarse${i}`);
    if (kind === "bin") {
      await write(join(dir, "fine_label_names.txt"), classNames.join("\n") + "\n");
      await write(join(dir, "coarse_label_names.txt"), coarseNames.join("\n") + "\n");
    } else {
      await write(
        join(dir, "meta"),
        pickleDictPy2([["fine_label_names", classNames], ["coarse_label_names", coarseNames]]),
      );
    }
  }
  return {
    classNames,
    train: { labels: trainParts.flatMap((p) => p.labels), records: trainParts.flatMap((p) => p.records) },
    test,
  };
}

// ---------------------------------------------------------------------------------------------
// IDX (Fashion-MNIST)

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** An IDX ubyte file: magic 0x0000080N, big-endian dims, then the bytes. */
export function idxBytes(shape: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  const dv = new DataView(head.buffer);
  head[2] = 0x08;
  head[3] = shape.length;
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  return concat([head, data]);
}

/** Writes a gzipped Fashion-MNIST IDX quartet; returns labels and 28x28 images per split. */
export async function writeFashionMnist(root: string, nTrain = 12, nTest = 4) {
  const out: Record<string, { labels: Uint8Array; images: Uint8Array }> = {};
  for (const [split, prefix, n] of [["train", "train", nTrain], ["test", "t10k", nTest]] as const) {
    const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
    const images = randomBytes(n + 5, n * 784);
    await write(join(root, `${prefix}-images-idx3-ubyte.gz`), await gzip(idxBytes([n, 28, 28], images)));
    await write(join(root, `${prefix}-labels-idx1-ubyte.gz`), await gzip(idxBytes([n], labels)));
    out[split] = { labels, images };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MATLAB v5 (Stanford Dogs lists)

function matElement(type: number, data: Uint8Array): Uint8Array {
  const pad = (8 - (data.length % 8)) % 8;
  const out = new Uint8Array(8 + data.length + pad);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, data.length, true);
  out.set(data, 8);
  return out;
}

function u32s(xs: number[]): Uint8Array {
  const b = new Uint8Array(4 * xs.length);
  xs.forEach((x, i) => new DataView(b.buffer).setUint32(4 * i, x, true));
  return b;
}

function matMatrix(name: string, cls: number, dims: number[], body: Uint8Array[]): Uint8Array {
  const flags = matElement(6, u32s([cls, 0]));
  const dimEl = matElement(5, u32s(dims));
  const nameEl = matElement(1, new TextEncoder().encode(name));
  return matElement(14, concat([flags, dimEl, nameEl, ...body]));
}

function matChar(s: string): Uint8Array {
  const b = new Uint8Array(2 * s.length);
  for (let i = 0; i < s.length; i++) new DataView(b.buffer).setUint16(2 * i, s.charCodeAt(i), true);
  return matMatrix("", 4, [1, s.length], [matElement(4, b)]);
}

/**
 * A MATLAB v5 MAT-file with `file_list` / `annotation_list` (N x 1 cells of char rows) and
 * `labels` (N x 1 double), each variable in its own zlib-compressed element as MATLAB -v7 writes.
 */
export async function matFileList(files: string[], labels: number[]): Promise<Uint8Array> {
  const header = new Uint8Array(128).fill(0x20);
  header.set(
    new TextEncoder().encode("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024"),
  );
  header.fill(0, 116, 124);
  header[124] = 0x00;
  header[125] = 0x01;
  header[126] = "I".charCodeAt(0);
  header[127] = "M".charCodeAt(0);
  const cell = (name: string, xs: string[]) => matMatrix(name, 1, [xs.length, 1], xs.map(matChar));
  const dbl = new Uint8Array(8 * labels.length);
  labels.forEach((v, i) => new DataView(dbl.buffer).setFloat64(8 * i, v, true));
  const vars = [
    cell("file_list", files),
    cell("annotation_list", files.map((f) => f.replace(/\.jpg$/, ""))),
    matMatrix("labels", 6, [labels.length, 1], [matElement(9, dbl)]),
  ];
  const compressed: Uint8Array[] = [];
  for (const v of vars) {
    const s = new Blob([v as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
    const z = new Uint8Array(await new Response(s).arrayBuffer());
    const head = new Uint8Array(8);
    new DataView(head.buffer).setUint32(0, 15, true);
    new DataView(head.buffer).setUint32(4, z.length, true);
    compressed.push(head, z);
  }
  return concat([header, ...compressed]);
}

// ---------------------------------------------------------------------------------------------
/**
 * Structured raw RGB pixels: red rises left to right (20 → 220), green rises top to bottom
 * (20 → 220), blue is the constant `blue`. A mirrored, flipped or transposed decode, or a swapped
 * channel order, moves every one of these three ramps (solid colours would survive all of them).
 */
export function gradientPixels(w: number, h: number, blue: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      px[i] = Math.round(20 + (200 * x) / (w - 1));
      px[i + 1] = Math.round(20 + (200 * y) / (h - 1));
      px[i + 2] = blue;
    }
  }
  return px;
}

/** {@link gradientPixels} encoded by sharp's JPEG encoder (quality 95, no chroma subsampling). */
export function gradientJpeg(w: number, h: number, blue: number): Promise<Uint8Array> {
  return encode(gradientPixels(w, h, blue), w, h, "jpeg");
}

// Image-file datasets

/** One generated image: where, its class, and the solid colour it was drawn with. */
export interface ImageTruth {
  /** Path relative to the dataset root. */
  path: string;
  /** Class index the reader should assign. */
  label: number;
  /** Solid colour (before JPEG). */
  rgb: [number, number, number];
  /** Source size. */
  width: number;
  height: number;
}

async function solidImage(
  root: string,
  path: string,
  label: number,
  k: number,
  w: number,
  h: number,
  format: "jpeg" | "png" | "gif",
): Promise<ImageTruth> {
  const rgb = colorOf(label, k);
  await write(join(root, path), await encode(solid(w, h, rgb), w, h, format));
  return { path, label, rgb, width: w, height: h };
}

/** The ten Imagenette wnids (sorted = class order). */
export const WNIDS = IMAGENETTE_WNIDS;

/**
 * Imagenette2-160 layout: `imagenette2-160/{train,val}/<wnid>/<wnid>_<k>.JPEG`, the wnid folders
 * created in reverse order (so only sorting gives the right class order), non-square JPEGs.
 */
export async function writeImagenette(parent: string, classes = 3, perTrain = 2, perVal = 1) {
  const root = join(parent, "imagenette2-160");
  const out: Record<"train" | "val", ImageTruth[]> = { train: [], val: [] };
  for (let c = classes - 1; c >= 0; c--) {
    for (const [split, n] of [["train", perTrain], ["val", perVal]] as const) {
      for (let k = 0; k < n; k++) {
        const w = 40 + 8 * k, h = 30;
        out[split].push(
          await solidImage(
            root,
            `${split}/${WNIDS[c]}/${WNIDS[c]}_${k}.JPEG`,
            c,
            k + (split === "val" ? 5 : 0),
            w,
            h,
            "jpeg",
          ),
        );
      }
    }
  }
  for (const s of ["train", "val"] as const) out[s].sort((a, b) => (a.path < b.path ? -1 : 1));
  return { root, classes: WNIDS.slice(0, classes), ...out };
}

/** Stanford Dogs layout: `Images/<synset>-<breed>/<synset>_<k>.jpg`, plus official lists as MAT v5. */
export async function writeDogs(root: string, perClass = 5) {
  const breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"];
  const items: ImageTruth[] = [];
  for (let c = 0; c < breeds.length; c++) {
    for (let k = 0; k < perClass; k++) {
      const syn = breeds[c].split("-")[0];
      items.push(await solidImage(root, `Images/${breeds[c]}/${syn}_${100 + k}.jpg`, c, k, 36, 24, "jpeg"));
    }
  }
  // Official-style lists: the first 3 of each class train, the rest test (1-based labels).
  const rel = (it: ImageTruth) => it.path.slice("Images/".length);
  const trainList = items.filter((it) => Number(/_(\d+)\.jpg$/.exec(it.path)![1]) < 103);
  const testList = items.filter((it) => !trainList.includes(it));
  await write(
    join(root, "lists", "train_list.mat"),
    await matFileList(trainList.map(rel), trainList.map((t) => t.label + 1)),
  );
  await write(
    join(root, "lists", "test_list.mat"),
    await matFileList(testList.map(rel), testList.map((t) => t.label + 1)),
  );
  return { root, breeds, items, trainList, testList };
}

/** HAM10000 dx classes in the order they are written to the CSV (not sorted, on purpose). */
export const HAM_DX = ["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"];

/**
 * HAM10000 Kaggle layout: `HAM10000_metadata.csv` (lesion_id,image_id,dx,dx_type,age,sex,
 * localization) and `ISIC_xxxxxxx.jpg` files alternating between the two part folders.
 * `counts[i]` images of class `HAM_DX[i]`.
 */
export async function writeHam(root: string, counts = [20, 5, 5, 4, 4, 4, 4]) {
  const rows: string[] = ["lesion_id,image_id,dx,dx_type,age,sex,localization"];
  const items: (ImageTruth & { id: string; dx: string })[] = [];
  const sorted = [...HAM_DX].sort();
  let n = 0;
  for (let c = 0; c < HAM_DX.length; c++) {
    for (let k = 0; k < counts[c]; k++, n++) {
      const id = `ISIC_${String(24306 + n).padStart(7, "0")}`;
      const part = n % 2 === 0 ? "HAM10000_images_part_1" : "HAM10000_images_part_2";
      const label = sorted.indexOf(HAM_DX[c]);
      const t = await solidImage(root, `${part}/${id}.jpg`, label, k, 30, 24, "jpeg");
      items.push({ ...t, id, dx: HAM_DX[c] });
      rows.push(`HAM_${String(n).padStart(7, "0")},${id},${HAM_DX[c]},histo,${40 + (n % 30)}.0,male,back`);
    }
  }
  await write(join(root, "HAM10000_metadata.csv"), rows.join("\n") + "\n");
  return { root, items, classNames: sorted };
}

/**
 * MIT Indoor-67: `Images/<category>/*.jpg` and `TrainImages.txt` / `TestImages.txt`. Includes a
 * GIF and a greyscale JPEG named .jpg, and wide images whose centred square is a different colour
 * from the side bands (to check the centre-square storage).
 */
export async function writeIndoor(root: string) {
  const cats = ["bakery", "airport_inside", "casino"];
  const sorted = [...cats].sort();
  const train: ImageTruth[] = [], test: ImageTruth[] = [];
  for (const cat of cats) {
    const label = sorted.indexOf(cat);
    for (let k = 0; k < 3; k++) {
      const path = `Images/${cat}/${cat}_${String(k + 1).padStart(4, "0")}.jpg`;
      // 48x32: centred 32x32 square in the item colour, 8-px side bands in red.
      const rgb = colorOf(label, k);
      const w = 48, h = 32;
      const px = solid(w, h, [255, 0, 0]);
      for (let y = 0; y < h; y++) for (let x = 8; x < 40; x++) px.set(rgb, (y * w + x) * 3);
      await write(join(root, path), await encode(px, w, h, "jpeg"));
      (k < 2 ? train : test).push({ path, label, rgb, width: w, height: h });
    }
  }
  // A GIF and a greyscale JPEG, both named .jpg.
  const gifLabel = sorted.indexOf("casino");
  const gif: ImageTruth = {
    path: "Images/casino/casino_gif.jpg",
    label: gifLabel,
    rgb: [0, 0, 255],
    width: 20,
    height: 20,
  };
  await write(join(root, gif.path), await encode(solid(20, 20, gif.rgb), 20, 20, "gif"));
  const grey: ImageTruth = {
    path: "Images/bakery/bakery_grey.jpg",
    label: sorted.indexOf("bakery"),
    rgb: [90, 90, 90],
    width: 24,
    height: 24,
  };
  await write(join(root, grey.path), await encode(new Uint8Array(24 * 24).fill(90), 24, 24, "jpeg", 1));
  train.push(gif, grey);
  const rel = (t: ImageTruth) => t.path.slice("Images/".length);
  // One listed file that does not exist: skipped and counted, not fatal.
  await write(
    join(root, "TrainImages.txt"),
    [...train.map(rel), "casino/casino_missing.jpg"].join("\n") + "\n",
  );
  await write(join(root, "TestImages.txt"), test.map(rel).join("\r\n") + "\r\n");
  return { root, classNames: sorted, train, test, missing: "Images/casino/casino_missing.jpg" };
}

/**
 * MiniPlaces dev-kit layout: `images/train/<letter>/<category>[/<sub>]/<n>.jpg`, `images/val/<n>.jpg`,
 * `data/{categories,train,val}.txt`, 128x128 JPEGs; includes a sub-category (`/b/bakery/shop`).
 */
export async function writeMiniPlaces(root: string) {
  const cats = ["/a/abbey", "/b/bakery/shop", "/b/bar", "/c/church/outdoor"];
  await write(join(root, "data", "categories.txt"), cats.map((c, i) => `${c} ${i}`).join("\n") + "\n");
  const train: ImageTruth[] = [], val: ImageTruth[] = [];
  const trainLines: string[] = [], valLines: string[] = [];
  for (let c = 0; c < cats.length; c++) {
    for (let k = 0; k < 2; k++) {
      const rel = `train${cats[c]}/${String(k + 1).padStart(8, "0")}.jpg`;
      train.push(await solidImage(root, `images/${rel}`, c, k, 128, 128, "jpeg"));
      trainLines.push(`${rel} ${c}`);
    }
  }
  for (let v = 0; v < 3; v++) {
    const c = (v * 3 + 1) % cats.length;
    const rel = `val/${String(v + 1).padStart(8, "0")}.jpg`;
    val.push(await solidImage(root, `images/${rel}`, c, v + 5, 128, 128, "jpeg"));
    valLines.push(`${rel} ${c}`);
  }
  await write(join(root, "data", "train.txt"), trainLines.join("\n") + "\n");
  await write(join(root, "data", "val.txt"), valLines.join("\n") + "\n");
  return { root, classNames: ["abbey", "bakery/shop", "bar", "church/outdoor"], train, val };
}

/**
 * Generic ImageFolder: `train/<class>/*.png` and `test/<class>/*.png`, 16x16 random-pixel PNGs
 * (lossless, so stored at 16x16 they round-trip exactly), plus one garbage and one truncated file.
 */
export async function writeImageFolder(root: string) {
  const classes = ["cat", "dog"];
  const out: Record<"train" | "test", { path: string; label: number; pixels: Uint8Array }[]> = {
    train: [],
    test: [],
  };
  for (const split of ["train", "test"] as const) {
    for (let c = 0; c < classes.length; c++) {
      for (let k = 0; k < (split === "train" ? 3 : 2); k++) {
        const path = `${split}/${classes[c]}/${k}.png`;
        const pixels = randomBytes(1000 + c * 10 + k + (split === "test" ? 500 : 0), 16 * 16 * 3);
        await write(join(root, path), await encode(pixels, 16, 16, "png"));
        out[split].push({ path, label: c, pixels });
      }
    }
  }
  const bad = await corruptFiles();
  await write(join(root, "train/cat/zz_garbage.jpg"), bad.garbage);
  await write(join(root, "train/dog/zz_truncated.jpg"), bad.truncated);
  // Not an image extension: ImageFolder ignores it.
  await write(join(root, "train/dog/notes.txt"), "ignored\n");
  return { root, classes, ...out, corrupt: ["train/cat/zz_garbage.jpg", "train/dog/zz_truncated.jpg"] };
}
