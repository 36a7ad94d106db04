/**
 * Synthetic datasets written in an official on-disk layout, for throughput measurements
 * (`deno task bench:data`) and tests: content is seeded noise, never real images.
 *
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { Rng } from "../runtime/rng.ts";

/** The ten Imagenette wnids in sorted (class-index) order: the class folders of an Imagenette layout. */
export const IMAGENETTE_WNIDS = [
  "n01440764",
  "n02102040",
  "n02979186",
  "n03000684",
  "n03028079",
  "n03394916",
  "n03417042",
  "n03425413",
  "n03445777",
  "n03888605",
];

/**
 * An Imagenette-like benchmark set: `n` JPEGs of 213x160 (short side 160) with random blocks, in
 * ten class folders under `parent/imagenette2-160/{train,val}/`, for prepare-throughput
 * measurements. Returns the dataset root.
 */
export async function writeJpegBenchSet(parent: string, n: number): Promise<string> {
  const root = join(parent, "imagenette2-160");
  const rng = new Rng(5);
  for (let i = 0; i < n; i++) {
    const split = Math.floor(i / 10) % 5 === 4 ? "val" : "train";
    const c = i % 10;
    const w = 213, h = 160;
    // Smooth-ish content (8x8 random blocks upscaled) compresses like photos rather than noise.
    const small = Uint8Array.from({ length: 27 * 20 * 3 }, () => rng.nextUint32() & 0xff);
    const jpeg = await sharp(small, { raw: { width: 27, height: 20, channels: 3 } })
      .resize(w, h, { kernel: "cubic" })
      .jpeg({ quality: 90 })
      .toBuffer();
    const dir = join(root, split, IMAGENETTE_WNIDS[c]);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(join(dir, `${IMAGENETTE_WNIDS[c]}_${i}.JPEG`), new Uint8Array(jpeg));
  }
  return root;
}
