/**
 * IDX reader (the MNIST / Fashion-MNIST format) and the Fashion-MNIST dataset reader.
 *
 * Fashion-MNIST is read from `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
 * `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, the layout of the official
 * distribution and of Debian's `dataset-fashion-mnist` package (default root
 * `/usr/share/datasets/fashion-mnist`). Images are stored as-is: 28x28, one channel.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import { gunzipBounded, readFileBounded } from "../../runtime/cli.ts";
import type { StorageSpec } from "../images.ts";
import { arraySplit, type DatasetSource, type ReaderOptions, statOrUndefined } from "./common.ts";

/** A parsed IDX file of unsigned bytes. */
export interface IdxArray {
  /** Dimension sizes, outermost first. */
  shape: number[];
  /** The element bytes, row-major. */
  data: Uint8Array;
}

/**
 * The largest IDX file accepted, compressed or not (Fashion-MNIST's largest is 47 MB): bounds both
 * the read and the gunzip, so a device file or a decompression bomb cannot hang the reader.
 */
export const MAX_IDX_BYTES = 512 * 2 ** 20;

/**
 * Gunzips `bytes` if they start with the gzip magic; otherwise returns them unchanged. A truncated
 * or corrupt stream, or one inflating past {@link MAX_IDX_BYTES}, is a one-line UserError naming `where`.
 */
export async function maybeGunzip(bytes: Uint8Array, where = "gzip input"): Promise<Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  return await gunzipBounded(bytes, MAX_IDX_BYTES, where);
}

/** Parses an IDX file whose element type is unsigned byte (type code 0x08). */
export function parseIdx(bytes: Uint8Array, where: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new UserError(`${where}: not an IDX file (bad magic)`);
  }
  if (bytes[2] !== 0x08) {
    throw new UserError(`${where}: IDX element type 0x${bytes[2].toString(16)}, expected 0x08 (ubyte)`);
  }
  const dims = bytes[3];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * dims) throw new UserError(`${where}: truncated IDX header`);
  const shape: number[] = [];
  for (let d = 0; d < dims; d++) shape.push(dv.getUint32(4 + 4 * d, false));
  const n = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * dims;
  if (bytes.length !== start + n) {
    throw new UserError(`${where}: IDX payload is ${bytes.length - start} bytes, header says ${n}`);
  }
  return { shape, data: bytes.subarray(start) };
}

/** Reads `dir/name` or `dir/name.gz` as IDX. Returns the parsed array and the path used. */
export async function readIdxFile(dir: string, name: string): Promise<{ array: IdxArray; path: string }> {
  for (const candidate of [name, `${name}.gz`]) {
    const path = join(dir, candidate);
    if ((await statOrUndefined(path))?.isFile) {
      return {
        array: parseIdx(await maybeGunzip(await readFileBounded(path, MAX_IDX_BYTES), path), path),
        path,
      };
    }
  }
  throw new UserError(
    `expected ${name}.gz (or ${name}) in ${dir}; install Debian's dataset-fashion-mnist or extract the IDX files there`,
  );
}

/** Fashion-MNIST class names in label order. */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

const STORAGE: StorageSpec = { height: 28, width: 28, channels: 1, fit: "stretch" };

/** Opens Fashion-MNIST (IDX, optionally gzipped) under `opts.root`. */
export async function openFashionMnist(opts: ReaderOptions): Promise<DatasetSource> {
  if (!(await statOrUndefined(opts.root))?.isDirectory) {
    throw new UserError(
      `expected train-images-idx3-ubyte.gz in ${opts.root}; install Debian's dataset-fashion-mnist or pass --root`,
    );
  }
  const files: string[] = [];
  const split = async (name: string, prefix: string) => {
    const images = await readIdxFile(opts.root, `${prefix}-images-idx3-ubyte`);
    const labels = await readIdxFile(opts.root, `${prefix}-labels-idx1-ubyte`);
    files.push(images.path, labels.path);
    const [n, h, w] = images.array.shape;
    if (images.array.shape.length !== 3 || h !== 28 || w !== 28) {
      throw new UserError(`${images.path}: shape [${images.array.shape}], expected [N, 28, 28]`);
    }
    if (labels.array.shape.length !== 1 || labels.array.shape[0] !== n) {
      throw new UserError(`${labels.path}: ${labels.array.shape[0]} labels for ${n} images`);
    }
    const y = Int32Array.from(labels.array.data);
    y.forEach((v, i) => {
      if (v >= 10) throw new UserError(`${labels.path}: label ${v} at index ${i}, expected 0..9`);
    });
    const px = images.array.data;
    return arraySplit(
      name,
      y,
      STORAGE,
      (i) => px.slice(i * 784, (i + 1) * 784),
      (i) => `${images.path}#${i}`,
    );
  };
  const train = await split("train", "train");
  const test = await split("test", "t10k");
  return {
    id: "fashion-mnist",
    format: "IDX",
    root: opts.root,
    classNames: FASHION_MNIST_CLASSES,
    storage: STORAGE,
    splits: [train, test],
    sourceFiles: files,
    options: {},
    notes: ["stored with 1 channel as in the source; the loader expands grey to RGB"],
  };
}
