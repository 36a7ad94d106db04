/**
 * Questions about a model that its shapes answer, without computing a tensor: which depthwise, SE
 * and 1×1-conv kernel shapes it runs ({@link kernelShapes}, {@link zooKernelShapes}) and how large
 * its largest tensor is ({@link largestActivation}). Each runs the parameter/FLOP counter's meta-mode
 * forward (registry.ts `metaForwardModel`) with a `ctx.trace` hook that sees every op taking a
 * context; no op is replaced.
 *
 * @module
 */
import type { MetaTensor, ModelOptions, Tensor } from "./core.ts";
import { metaForwardModel, modelOptions, MODELS } from "./registry.ts";
import "./zoo.ts";
import { mergeShapes, type ZooLayerShape } from "../kernels/zoo_shapes.ts";
import type { SeActivation, SeGate } from "../kernels/se.ts";

const pair = (v: number | [number, number]): [number, number] => (typeof v === "number" ? [v, v] : v);
const shapeOf = (t: Tensor): number[] => (t as unknown as MetaTensor).shape;

interface ConvTraceOptions {
  stride?: number | [number, number];
  pad?: number | [number, number];
  depthwise?: boolean;
}

/**
 * The depthwise, SE and 1×1-conv (stride 1, no padding: a matmul) layer shapes model `id` runs at
 * batch 1 with options `o` (over the spec's defaults), in call order, each tagged with `id`.
 */
export function kernelShapes(id: string, o: ModelOptions): ZooLayerShape[] {
  const found: ZooLayerShape[] = [];
  metaForwardModel(id, o, {
    trace: (op, inputs, _output, options) => {
      const [, H, W, C] = shapeOf(inputs[0]);
      if (op === "conv2d") {
        const c = options as ConvTraceOptions;
        const w = shapeOf(inputs[1]);
        const [kh, kw] = w;
        if (c.depthwise) {
          found.push({
            kind: "dw",
            H,
            W,
            C,
            kernel: [kh, kw],
            strides: pair(c.stride ?? 1),
            pad: pair(c.pad ?? [(kh - 1) / 2, (kw - 1) / 2]),
            models: [id],
          });
        } else if (
          kh === 1 && kw === 1 && pair(c.stride ?? 1).join() === "1,1" && pair(c.pad ?? 0).join() === "0,0"
        ) {
          found.push({ kind: "pw", H, W, C, Cout: w[w.length - 1], models: [id] });
        }
      } else if (op === "squeezeExcite") {
        const w1 = shapeOf(inputs[1]);
        const se = options as { act: SeActivation; gate: SeGate };
        found.push({ kind: "se", H, W, C, Cr: w1[w1.length - 1], act: se.act, gate: se.gate, models: [id] });
      }
    },
  });
  return found;
}

/**
 * Distinct depthwise, SE and 1×1-conv shapes of the registered models (the zoo, imported here, and
 * any model registered since; or of `models` only) at `imageSize`, batch 1 and 1000 classes, each
 * with the models (and repeat counts) it occurs in.
 * `source` is always the model registry (benchmarks print it with their results).
 */
export function zooKernelShapes(
  imageSize = 224,
  models?: readonly string[],
): { source: "registry"; shapes: ZooLayerShape[] } {
  const ids = models ?? Object.keys(MODELS).sort();
  const all = ids.flatMap((id) => kernelShapes(id, { numClasses: 1000, imageSize }));
  return { source: "registry", shapes: mergeShapes(all) };
}

/**
 * The largest single tensor (elements) of one training forward of model `id` at batch `batch`,
 * and where it occurs: the input, every traced op's first input and output, and every conv input
 * as padded. Backward tensors have the same shapes as forward ones, so this bounds one binding.
 */
export function largestActivation(
  id: string,
  o: ModelOptions,
  batch: number,
): { elements: number; where: string } {
  const s = modelOptions(id, o).imageSize;
  let best = { elements: batch * s * s * 3, where: `input [${batch},${s},${s},3]` };
  const see = (t: Tensor, name: string, extra = 0) => {
    const shape = shapeOf(t);
    const [b, h, w, c] = shape;
    const n = shape.length === 4 && extra
      ? b * (h + 2 * extra) * (w + 2 * extra) * c
      : shape.reduce((a, d) => a * d, 1);
    if (n > best.elements) best = { elements: n, where: `${name} [${shape}]` };
  };
  metaForwardModel(id, o, {
    batch,
    training: true,
    trace: (op, inputs, output, options) => {
      see(inputs[0], op);
      see(output, op);
      if (op === "conv2d") {
        const pad = (options as ConvTraceOptions).pad;
        see(inputs[0], "padded conv input", Math.max(...[pad ?? (shapeOf(inputs[1])[0] - 1) / 2].flat()));
      }
    },
  });
  return best;
}

/**
 * Where model `id` at options `o` would produce an empty tensor (a spatial size below 1: the input
 * is too small for its downsampling), as "op [shape]", or undefined when every tensor is non-empty.
 */
export function emptyActivation(id: string, o: ModelOptions): string | undefined {
  let where: string | undefined;
  metaForwardModel(id, o, {
    training: true,
    trace: (op, inputs, output) => {
      for (const t of [...inputs, output]) {
        const shape = shapeOf(t);
        if (where === undefined && shape?.some((d) => !(d >= 1))) where = `${op} [${shape}]`;
      }
    },
  });
  return where;
}
