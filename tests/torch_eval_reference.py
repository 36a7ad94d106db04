"""Evaluates a Fashion-MNIST run's weights.safetensors in PyTorch, independently of xscore.

torchvision's mobilenet_v2(num_classes=10) loads the file with strict=True; the test images are
read from the official IDX files and preprocessed as the paper preset's eval transform at the
run's size (PIL bilinear Resize((S, S)), ToTensor, Normalize(0.2860, 0.3530), grey replicated to
RGB). Prints {"n", "correct", "accuracy"} as JSON.

Usage: python3 torch_eval_reference.py WEIGHTS IDX_DIR SIZE [LIMIT]   (the first LIMIT test images)
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """The format: u64 LE header length, JSON header, raw little-endian tensor bytes."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    (magic,) = struct.unpack(">I", raw[:4])
    dims = [struct.unpack(">I", raw[4 + 4 * i: 8 + 4 * i])[0] for i in range(magic & 0xFF)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def main():
    weights, idx_dir, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    model = torchvision.models.mobilenet_v2(num_classes=10)
    model.load_state_dict(read_safetensors(weights), strict=True)
    model.eval()
    images = read_idx(f"{idx_dir}/t10k-images-idx3-ubyte.gz")[:limit]
    labels = read_idx(f"{idx_dir}/t10k-labels-idx1-ubyte.gz").astype(np.int64)[:limit]
    correct = 0
    torch.set_num_threads(2)
    with torch.no_grad():
        for start in range(0, len(images), 500):
            batch = []
            for img in images[start:start + 500]:
                r = Image.fromarray(img, mode="L").resize((size, size), Image.BILINEAR)
                x = (np.asarray(r, dtype=np.float32) / 255.0 - 0.2860) / 0.3530
                batch.append(np.stack([x, x, x]))
            pred = model(torch.from_numpy(np.stack(batch))).argmax(1).numpy()
            correct += int((pred == labels[start:start + 500]).sum())
    print(json.dumps({"n": int(len(images)), "correct": correct, "accuracy": 100.0 * correct / len(images)}))


if __name__ == "__main__":
    main()
