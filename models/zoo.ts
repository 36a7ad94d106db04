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
import { mobilenetSpec } from "./mobilenet.ts";
import { efficientnetSpec } from "./efficientnet.ts";
import { fbnetSpec } from "./fbnet.ts";
import { tinynetSpec } from "./tinynet.ts";
import { mobileoneSpec } from "./mobileone.ts";
import { ghostnetSpec } from "./ghostnet.ts";

registerModel(mobilenetSpec);
registerModel(efficientnetSpec);
registerModel(fbnetSpec);
registerModel(tinynetSpec);
registerModel(mobileoneSpec);
registerModel(ghostnetSpec);
registerModel(convmixerSpec);
registerModel(convnextSpec);
registerModel(mobilevitSpec);
registerModel(shufflenetSpec);
registerModel(starnetSpec);
