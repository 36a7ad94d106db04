/**
 * MIT Indoor-67 under the reference preset (docs/protocol.md §2.2): the authors' RandomResizedCrop(224,
 * scale 0.9-1.1, ratio (1, 1)) runs on the original image, where no try fits an image wider than
 * ~1.11:1 and torchvision falls back to the centred square. The cache stores that square, so the
 * crop is drawn on the original size and mapped into it. Truth: torchvision's acceptance rule
 * (w = round(√(U·W·H)) ≤ min(W, H), U ~ U(0.9, 1.1), ten tries) computed by hand per image size.
 */
import { assert, assertEquals } from "./assert.ts";
import { Rng } from "../runtime/rng.ts";
import { compileTrain, GEOM_STRIDE, mapBoxFromCenterSquare, planTrainBatch } from "../data/augment/mod.ts";
import { paperProtocol, referenceProtocol } from "../data/protocol.ts";

const S = 256;

/**
 * torchvision on a W×H original: the probability that the crop is the whole centred square (all
 * ten tries fail, or a try fits with side round(√(U·W·H)) = min(W, H), which the stored square can
 * only hold centred), from the acceptance rule alone. Ties of round-half-even have probability 0.
 */
function wholeSquareProbability(w: number, h: number): { whole: number; fallback: number } {
  const m = Math.min(w, h);
  const p = (u: number) => Math.min(1, Math.max(0, (u - 0.9) / 0.2));
  const q1 = p((m - 0.5) ** 2 / (w * h)); // side < m
  const q = p((m + 0.5) ** 2 / (w * h)); // side <= m
  const fallback = (1 - q) ** 10;
  return { whole: q === 0 ? 1 : 1 - (q1 / q) * (1 - fallback), fallback };
}

/** Fraction of `n` drawn crops that are the whole stored square, for originals of size w×h. */
function fallbackRate(w: number, h: number, n: number, fit?: "center-square"): number {
  const p = compileTrain(referenceProtocol("mit-indoor67"), S, S, 224);
  const sizes = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) sizes.set([w, h], 2 * i);
  const plan = planTrainBatch(p, new Rng(12), { height: S, width: S }, n, n, false, {
    sizes,
    height: S,
    width: S,
    fit,
  });
  let whole = 0;
  for (let i = 0; i < n; i++) {
    const [x, y, bw, bh] = plan.geom.subarray(i * GEOM_STRIDE, i * GEOM_STRIDE + 4);
    if (x === 0 && y === 0 && bw === S && bh === S) whole++;
  }
  return whole / n;
}

Deno.test("Indoor-67 reference crops: torchvision's fallback rate on originals of known sizes", () => {
  const n = 4000;
  for (const [w, h] of [[400, 300], [300, 450], [340, 300], [330, 300], [315, 300], [300, 300]]) {
    const { whole, fallback } = wholeSquareProbability(w, h);
    const got = fallbackRate(w, h, n, "center-square");
    // Binomial: 5 standard deviations (and at least 2 crops) of slack.
    const tol = Math.max(5 * Math.sqrt(whole * (1 - whole) / n), 2 / n);
    assert(
      Math.abs(got - whole) <= tol,
      `${w}x${h}: centred square ${got}, torchvision ${whole.toFixed(4)} ± ${tol} (fallback ${
        fallback.toFixed(4)
      })`,
    );
  }
  // Images wider than 1.11:1 always get the fixed centred square, as in the authors' pipeline; on
  // the stored square alone (no original size) the crop is random nearly every time.
  assertEquals(fallbackRate(400, 300, 500, "center-square"), 1);
  assert(fallbackRate(400, 300, 500) < 0.01);
});

Deno.test("mapBoxFromCenterSquare: the centred square maps onto the whole stored image; off-square boxes move inside", () => {
  assertEquals(mapBoxFromCenterSquare({ left: 50, top: 0, width: 300, height: 300 }, 400, 300, S, S), {
    left: 0,
    top: 0,
    width: S,
    height: S,
  });
  // 310x300 original, a 290 px crop at x = 0: 5 px left of the square (which starts at x = 5)... moved in.
  const b = mapBoxFromCenterSquare({ left: 0, top: 4, width: 290, height: 290 }, 310, 300, S, S);
  assertEquals([b.left, b.top], [0, Math.round(4 * S / 300 * 1024) / 1024]);
  assert(Math.abs(b.width - 290 * S / 300) < 1e-3 && Math.abs(b.height - 290 * S / 300) < 1e-3);
});

Deno.test("Indoor-67 paper preset (no random crop) is unchanged by the original sizes", () => {
  const p = compileTrain(paperProtocol("mit-indoor67"), S, S, 224);
  const n = 16;
  const sizes = new Uint32Array(2 * n).map((_, i) => (i % 2 ? 300 : 400 + 10 * i));
  const a = planTrainBatch(p, new Rng(3), { height: S, width: S }, n, n, true, {
    sizes,
    height: S,
    width: S,
    fit: "center-square",
  });
  const b = planTrainBatch(p, new Rng(3), { height: S, width: S }, n, n, true);
  assertEquals(a.geom, b.geom);
  assertEquals(a.passes, b.passes);
});

Deno.test("Indoor-67 cache: the loader gets the original sizes with fit center-square for training only", async () => {
  const { writeIndoor } = await import("./fixtures.ts");
  const { prepareDataset } = await import("../data/datasets.ts");
  const { openCache } = await import("../data/cache/mod.ts");
  const { fromCacheSplit } = await import("../data/loader.ts");
  const root = await Deno.makeTempDir({ prefix: "xs-indoor-" });
  const cacheDir = `.cache/xs-indoor-${Date.now()}`;
  try {
    await writeIndoor(root);
    await prepareDataset({ dataset: "mit-indoor67", root, cacheDir, log: null });
    const cache = await openCache(cacheDir);
    const split = await cache.split("train");
    const src = fromCacheSplit(split);
    assertEquals(src.sourceFit, "center-square");
    assertEquals(src.sourceSizes, split.sourceSizes);
    assert(split.sourceSizes.length === 2 * split.count && split.sourceSizes[0] > 0);
    cache.close();
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
  }
});
