/**
 * The model zoo: imports every family file and registers it. Import this module (for its side
 * effect) before {@link buildModel} / {@link countModelOps}.
 *
 * @module
 */
import { registerModel } from "./registry.ts";
import { convmixerSpec } from "./convmixer.ts";
import { convnextSpec } from "./convnext.ts";
import { mobilevitSpec } from "./mobilevit.ts";
import { shufflenetSpec } from "./shufflenet.ts";
import { starnetSpec } from "./starnet.ts";
import { mobilenet } from "./mobilenet.ts";
import { efficientnet } from "./efficientnet.ts";
import { fbnet } from "./fbnet.ts";
import { tinynet } from "./tinynet.ts";
import { mobileone } from "./mobileone.ts";
import { ghostnet } from "./ghostnet.ts";

registerModel(mobilenet);
registerModel(efficientnet);
registerModel(fbnet);
registerModel(tinynet);
registerModel(mobileone);
registerModel(ghostnet);
registerModel(convmixerSpec);
registerModel(convnextSpec);
registerModel(mobilevitSpec);
registerModel(shufflenetSpec);
registerModel(starnetSpec);
