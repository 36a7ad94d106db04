/**
 * `mod.ts` as a library: importing it alone (no models/zoo.ts, no registry) gives every model of
 * the zoo, built and run on the CPU backend.
 */
import { assert, assertEquals } from "./assert.ts";
import * as xs from "../mod.ts";

/**
 * Trainable parameters at 10 classes of each model's default configuration, as the authors' code
 * builds it (the parameter-count table of docs/protocol.md; also asserted per variant in
 * models_test.ts).
 */
const PARAMS_10_CLASSES: Record<string, number> = {
  convmixer: 2_306_058,
  convnext: 2_623_914,
  efficientnet: 2_566_946,
  fbnet: 3_607_050,
  ghostnet: 2_277_278,
  mobilenet: 2_236_682,
  mobileone: 2_157_338,
  mobilevit: 4_667_562,
  shufflenet: 2_159_762,
  starnet: 2_678_098,
  tinynet: 2_490_982,
};

Deno.test("mod.ts alone registers the zoo: every model builds with its published parameter count and runs a forward", async () => {
  await xs.initRuntime({ backend: "cpu" });
  assertEquals(Object.keys(xs.MODELS).sort(), Object.keys(PARAMS_10_CLASSES).sort());
  for (const id of Object.keys(PARAMS_10_CLASSES)) {
    const m = xs.buildModel(id, { numClasses: 10, imageSize: 32, seed: 1 });
    try {
      assertEquals(m.params.countTrainable(), PARAMS_10_CLASSES[id], `${id} parameters`);
      const x = xs.tf.randomUniform([1, 32, 32, 3], -1, 1, "float32", 7);
      const y = m.apply(x, { training: false, rng: new xs.Rng(1), kernels: "stock" });
      assertEquals(y.shape, [1, 10], `${id} logits shape`);
      const v = await y.data();
      assert(v.every(Number.isFinite), `${id} logits finite`);
      xs.tf.dispose([x, y]);
    } finally {
      m.params.dispose();
    }
  }
});
