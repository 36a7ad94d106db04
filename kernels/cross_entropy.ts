/**
 * The training loss as one kernel each way: CutMix-mixed, label-smoothed cross-entropy
 *
 *     loss = −(1/B) Σ_b Σ_c t_bc · log softmax(x_b)_c,
 *     t_b = λ(1−ε)·onehot(y_a,b) + (1−λ)(1−ε)·onehot(y_b,b) + ε/C
 *
 * (PyTorch's `CrossEntropyLoss(label_smoothing=ε)` applied as λ·CE(y_a) + (1−λ)·CE(y_b), which is the
 * same thing: CE is linear in its target), with λ read from the step-scalar block
 * (kernels/step_scalars.ts). Forward: one workgroup sums the per-row losses; backward: one thread
 * per row writes dx = dy·(softmax(x) − t)/B. The stock composition (train/loss.ts) takes ~25
 * dispatches for the same.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import type { WebGPUBackend } from "../runtime/tf.ts";
import { flatDispatch, FlatProgram, gpuBackend, run } from "./common.ts";
import type { WebGPUProgram } from "./common.ts";
import { STEP_SCALARS } from "./step_scalars.ts";

/** Registered kernel: the loss. Inputs `logits` [B, C], `yA`, `yB` [B] int32, `scalars`; attr `smoothing`. */
export const XS_CUTMIX_CE = "XsCutmixCrossEntropy";
/** Registered kernel: its gradient w.r.t. the logits. Inputs `dy`, `logits`, `yA`, `yB`, `scalars`. */
export const XS_CUTMIX_CE_GRAD = "XsCutmixCrossEntropyGrad";

const WG = 64;

/** Row statistics shared by both programs: max, Σexp(x−max), Σx. */
const ROW_WGSL = `
fn xsRowStats(base : i32, classes : i32) -> vec3<f32> {
  var m = logits[base];
  for (var c = 1; c < classes; c++) { m = max(m, logits[base + c]); }
  var s = 0.0;
  var sx = 0.0;
  for (var c = 0; c < classes; c++) {
    let v = logits[base + c];
    s += exp(v - m);
    sx += v;
  }
  return vec3<f32>(m, s, sx);
}`;

class CrossEntropyProgram implements WebGPUProgram {
  outputShape = [1];
  shaderKey = "xsCutmixCE";
  dispatchLayout: WebGPUProgram["dispatchLayout"] = { x: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ["logits", "ya", "yb", "sc"];
  uniforms = "rows : i32, classes : i32, smoothing : f32,";

  getUserCode(): string {
    return `
      ${ROW_WGSL}
      var<workgroup> xsPart : array<f32, ${WG}>;
      fn main(index : i32) {
        let t = index % ${WG};
        let C = uniforms.classes;
        let lam = sc[${STEP_SCALARS.lambda}];
        let keep = 1.0 - uniforms.smoothing;
        var acc = 0.0;
        for (var r = t; r < uniforms.rows; r += ${WG}) {
          let base = r * C;
          let st = xsRowStats(base, C);
          let lse = st.x + log(st.y);
          let la = logits[base + ya[r]] - lse;
          let lb = logits[base + yb[r]] - lse;
          acc -= lam * keep * la + (1.0 - lam) * keep * lb + uniforms.smoothing / f32(C) * (st.z - f32(C) * lse);
        }
        xsPart[t] = acc;
        workgroupBarrier();
        for (var k = ${WG / 2}; k > 0; k = k / 2) {
          if (t < k) { xsPart[t] = xsPart[t] + xsPart[t + k]; }
          workgroupBarrier();
        }
        if (t == 0) { result[0] = xsPart[0] / f32(uniforms.rows); }
      }
    `;
  }
}

class CrossEntropyGradProgram extends FlatProgram {
  variableNames = ["dy", "logits", "ya", "yb", "sc"];
  uniforms = "rows : i32, classes : i32, smoothing : f32,";

  constructor(rows: number, classes: number) {
    super();
    this.outputShape = [rows, classes];
    this.shaderKey = "xsCutmixCEGrad";
    Object.assign(this, flatDispatch(this.outputShape, rows, WG));
  }

  getUserCode(): string {
    return `
      ${ROW_WGSL}
      fn main(index : i32) {
        let r = index;
        if (r >= uniforms.rows) { return; }
        let C = uniforms.classes;
        let base = r * C;
        let st = xsRowStats(base, C);
        let lam = sc[${STEP_SCALARS.lambda}];
        let keep = 1.0 - uniforms.smoothing;
        let g = dy[0] / f32(uniforms.rows);
        let a = ya[r];
        let b = yb[r];
        for (var c = 0; c < C; c++) {
          var tgt = uniforms.smoothing / f32(C);
          if (c == a) { tgt += lam * keep; }
          if (c == b) { tgt += (1.0 - lam) * keep; }
          result[base + c] = g * (exp(logits[base + c] - st.x) / st.y - tgt);
        }
      }
    `;
  }
}

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs: unknown;
}

function shapeOf(logits: tf.TensorInfo): [number, number] {
  if (logits.shape.length !== 2) throw new Error(`cutmix CE: logits must be [B, C], got [${logits.shape}]`);
  return logits.shape as [number, number];
}

/** WebGPU implementation of {@link XS_CUTMIX_CE}. */
export function crossEntropyWebGPU(args: KernelArgs): tf.TensorInfo {
  const { logits, yA, yB, scalars } = args.inputs;
  const [rows, classes] = shapeOf(logits);
  const { smoothing } = args.attrs as { smoothing: number };
  return run(
    gpuBackend(args.backend) as WebGPUBackend,
    new CrossEntropyProgram(),
    [logits, yA, yB, scalars],
    [
      { type: "int32", data: [rows] },
      { type: "int32", data: [classes] },
      { type: "float32", data: [smoothing] },
    ],
  );
}

/** WebGPU implementation of {@link XS_CUTMIX_CE_GRAD}. */
export function crossEntropyGradWebGPU(args: KernelArgs): tf.TensorInfo {
  const { dy, logits, yA, yB, scalars } = args.inputs;
  const [rows, classes] = shapeOf(logits);
  const { smoothing } = args.attrs as { smoothing: number };
  const program = new CrossEntropyGradProgram(rows, classes);
  return run(gpuBackend(args.backend) as WebGPUBackend, program, [dy, logits, yA, yB, scalars], [
    { type: "int32", data: [rows] },
    { type: "int32", data: [classes] },
    { type: "float32", data: [smoothing] },
  ]);
}

type CpuBackend = {
  data: { get(id: object): { values: Float32Array | Int32Array } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
};

/** The same loss on the CPU backend (float64 sums), for CPU reference runs. */
function cpuRows(args: KernelArgs) {
  const be = args.backend as CpuBackend;
  const v = (t: tf.TensorInfo) => be.data.get(t.dataId).values;
  const { logits, yA, yB, scalars } = args.inputs;
  const [rows, classes] = shapeOf(logits);
  const x = v(logits), a = v(yA), b = v(yB);
  const lam = v(scalars)[STEP_SCALARS.lambda];
  const { smoothing } = args.attrs as { smoothing: number };
  return { be, x, a, b, lam, rows, classes, smoothing, v };
}

/** CPU implementation of {@link XS_CUTMIX_CE}. */
export function crossEntropyCpu(args: KernelArgs): tf.TensorInfo {
  const { be, x, a, b, lam, rows, classes: C, smoothing: e } = cpuRows(args);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * C, (r + 1) * C);
    const m = Math.max(...row);
    let s = 0, sx = 0;
    for (const val of row) s += Math.exp(val - m), sx += val;
    const lse = m + Math.log(s);
    loss -= lam * (1 - e) * (row[a[r]] - lse) + (1 - lam) * (1 - e) * (row[b[r]] - lse) +
      (e / C) * (sx - C * lse);
  }
  return be.makeTensorInfo([1], "float32", Float32Array.of(loss / rows));
}

/** CPU implementation of {@link XS_CUTMIX_CE_GRAD}. */
export function crossEntropyGradCpu(args: KernelArgs): tf.TensorInfo {
  const { be, x, a, b, lam, rows, classes: C, smoothing: e, v } = cpuRows(args);
  const g = v(args.inputs.dy)[0] / rows;
  const out = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * C, (r + 1) * C);
    const m = Math.max(...row);
    let s = 0;
    for (const val of row) s += Math.exp(val - m);
    for (let c = 0; c < C; c++) {
      const t = e / C + (c === a[r] ? lam * (1 - e) : 0) + (c === b[r] ? (1 - lam) * (1 - e) : 0);
      out[r * C + c] = g * (Math.exp(row[c] - m) / s - t);
    }
  }
  return be.makeTensorInfo([rows, C], "float32", out);
}

/** The loss's gradient (registered by kernels/register.ts): the fused logit-gradient kernel. */
export const crossEntropyGrad: tf.GradFunc = (dy, saved, attrs) => {
  const [logits, yA, yB, scalars] = saved;
  return {
    logits: () =>
      tf.engine().runKernel(
        XS_CUTMIX_CE_GRAD,
        { dy: dy as tf.Tensor, logits, yA, yB, scalars },
        attrs,
      ) as tf.Tensor,
  };
};
