/**
 * models/inspect.ts against shapes derived by hand from the published architectures: the block
 * tables of MobileNetV2 (Sandler et al. 2018, Table 2) and EfficientNet-B0 (Tan & Le 2019, Table 1)
 * with PyTorch padding k // 2, and a largest tensor computed from ConvMixer's definition.
 */
import { assert, assertEquals } from "./assert.ts";
import { emptyActivation, kernelShapes, largestActivation } from "../models/inspect.ts";
import { ops } from "../models/core.ts";
import type { DwLayerShape, SeLayerShape, ZooLayerShape } from "../kernels/zoo_shapes.ts";

/** A layer shape without the models it occurs in. */
type Bare = Omit<DwLayerShape, "models"> | Omit<SeLayerShape, "models">;

const convOut = (h: number, k: number, s: number) => Math.floor((h + 2 * Math.floor(k / 2) - k) / s) + 1;

/**
 * Depthwise (and SE) layers of an inverted-residual network from its stage table: rows of
 * (expansion t, output channels c, repeats n, first stride s, kernel k), a 3×3 stride-2 stem of
 * `stem` channels, SE squeezing to a quarter of each block's input channels when `se` is given.
 */
function fromTable(
  rows: [number, number, number, number, number][],
  stem: number,
  size: number,
  se?: "silu",
): Bare[] {
  const out: Bare[] = [];
  let h = convOut(size, 3, 2), cin = stem;
  for (const [t, c, n, s, k] of rows) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1, hidden = cin * t, p = Math.floor(k / 2);
      out.push({ kind: "dw", H: h, W: h, C: hidden, kernel: [k, k], strides: [stride, stride], pad: [p, p] });
      h = convOut(h, k, stride);
      if (se) {
        out.push({ kind: "se", H: h, W: h, C: hidden, Cr: Math.floor(cin / 4), act: se, gate: "sigmoid" });
      }
      cin = c;
    }
  }
  return out;
}

const withoutModels = (shapes: ZooLayerShape[], kinds: string[]) =>
  shapes.filter((s) => kinds.includes(s.kind)).map(({ models: _, ...rest }) => rest);

/** A stage table written as published, rows "t c n s k" separated by "/". */
const stages = (text: string) =>
  text.split("/").map((row) =>
    row.trim().split(/\s+/).map(Number) as [number, number, number, number, number]
  );

/** Stage tables as published: MobileNetV2 (Table 2) and EfficientNet-B0 (Table 1). */
const PUBLISHED: Array<{ name: string; model: string; variant?: string; se?: "silu"; rows: string }> = [{
  name: "MobileNetV2's depthwise layers",
  model: "mobilenet",
  rows: "1 16 1 1 3 / 6 24 2 2 3 / 6 32 3 2 3 / 6 64 4 2 3 / 6 96 3 1 3 / 6 160 3 2 3 / 6 320 1 1 3",
}, {
  name: "EfficientNet-B0's depthwise and SE layers",
  model: "efficientnet",
  variant: "b0",
  se: "silu",
  rows: "1 16 1 1 3 / 6 24 2 2 3 / 6 40 2 2 5 / 6 80 3 2 3 / 6 112 3 1 5 / 6 192 4 2 5 / 6 320 1 1 3",
}];

for (const { name, model, variant, se, rows } of PUBLISHED) {
  Deno.test(`inspect: ${name} at 224 px are those of its published block table`, () => {
    const got = kernelShapes(model, { numClasses: 1000, imageSize: 224, ...(variant ? { variant } : {}) });
    assertEquals(withoutModels(got, se ? ["dw", "se"] : ["dw"]), fromTable(stages(rows), 32, 224, se));
    if (!se) assertEquals(got.filter((s) => s.kind === "se").length, 0, `no SE in ${model}`);
    assert(got.every((s) => s.models.join() === model), "every shape tagged with the model id");
    assertEquals(ops.conv2d.name, "conv2d", "ops untouched");
  });
}

Deno.test("inspect: ConvMixer's largest tensor is the padded input of its 5×5 depthwise conv", () => {
  // Patch 7 at 224 px: a 32×32 grid of 512 channels, padded by 2 for the 5×5 depthwise conv.
  const one = largestActivation("convmixer", { numClasses: 10, imageSize: 224, patchSize: 7 }, 1);
  assertEquals(one.elements, 36 * 36 * 512);
  assertEquals(
    largestActivation("convmixer", { numClasses: 10, imageSize: 224 }, 3).elements,
    3 * 36 * 36 * 512,
  );
  // At 32 px with patch 14 the grid is 2×2; padded by 2 it still outgrows the 32×32×3 input.
  const tiny = largestActivation("convmixer", { numClasses: 10, imageSize: 32, patchSize: 14 }, 1);
  assertEquals(tiny, { elements: 6 * 6 * 512, where: "padded conv input [1,2,2,512]" });
});

Deno.test("emptyActivation: an input too small for a model's downsampling is found before any GPU work", () => {
  // GhostNet downsamples by 32 and its 1×5 / 5×1 DFC gates pool by 2 more: 16 px leaves a 0×0 map.
  const where = emptyActivation("ghostnet", { numClasses: 10, imageSize: 16 });
  assert(where !== undefined && /\[1,0,0,\d+\]/.test(where), `ghostnet at 16 px: ${where}`);
  assertEquals(emptyActivation("mobilenet", { numClasses: 10, imageSize: 32 }), undefined);
});

Deno.test("metaForwardModel: one meta forward serves the counter and the traces (batch, mode)", async () => {
  const { countModelOps, metaForwardModel } = await import("../models/registry.ts");
  const o = { numClasses: 10, imageSize: 64 };
  assertEquals(metaForwardModel("convmixer", o), countModelOps("convmixer", o));
  const batches = new Set<number>();
  const traced = metaForwardModel("convmixer", o, {
    batch: 3,
    training: true,
    trace: (_op, inputs) => void batches.add((inputs[0] as unknown as { shape: number[] }).shape[0]),
  });
  assertEquals([...batches], [3]);
  // Counts are per forward of the given batch; parameters do not depend on it.
  assertEquals(traced.params, countModelOps("convmixer", o).params);
});
