"""Writes tests/golden/torchvision_mobilenet_v2.json: the names, shapes and dtypes of torchvision's
mobilenet_v2(num_classes=10).state_dict(), in order. tests/eval_test.ts checks that xscore's
PyTorch export of its MobileNetV2 has exactly these.

Run from the repository root: /usr/bin/python3 tests/golden/torchvision_state_dicts.py
"""
import json

import torch
import torchvision

model = torchvision.models.mobilenet_v2(num_classes=10)
entries = [
    {"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
    for k, v in model.state_dict().items()
]
out = {
    "source": "torchvision.models.mobilenet_v2(num_classes=10).state_dict()",
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "entries": entries,
}
# One entry per line (the layout `deno fmt` keeps), so a diff shows the tensor that changed.
lines = ",\n".join("    { " + json.dumps(e, separators=(", ", ": "))[1:-1] + " }" for e in entries)
head = json.dumps({k: v for k, v in out.items() if k != "entries"}, indent=2)[:-2]
with open("tests/golden/torchvision_mobilenet_v2.json", "w") as f:
    f.write(head + ',\n  "entries": [\n' + lines + "\n  ]\n}\n")
print(f"{len(entries)} tensors")
