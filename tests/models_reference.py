"""Independent truth for tests/models_extra_test.ts (REFERENCE_LOGITS).

A float64 numpy transliteration of the reference repository's PyTorch modules (convmixer_2m.py,
convnext.py, mobilevit.py, shufflenet_v2.py, starnet.py at javawormer/beyond_imagenet 8f58d2a),
in PyTorch's NCHW layout and eval mode, addressing weights by their state_dict names. It reads the
JSON dumps the test writes with XS_DUMP_REFERENCE=<dir> (our weights, converted here to torch
layouts, the input and our logits), prints how far our logits are from its own, and prints the
REFERENCE_LOGITS entries to paste into the test.

    XS_DUMP_REFERENCE=/tmp/ref deno test --allow-read --allow-env --allow-write=/tmp/ref \
        tests/models_extra_test.ts --filter numpy
    python3 tests/models_reference.py /tmp/ref/*.json

Needs only numpy.
"""
import json
import math
import sys

import numpy as np

erf = np.frompyfunc(math.erf, 1, 1)

def load(path):
    d = json.load(open(path))
    sd = {}
    for k, v in d["params"].items():
        a = np.array(v["data"], dtype=np.float64).reshape(v["shape"])
        lay = v["layout"]
        if lay == "conv": a = a.transpose(3, 2, 0, 1)
        elif lay == "depthwise": a = a.transpose(2, 3, 0, 1)
        elif lay == "linear": a = a.T
        sd[k] = a
    size = d["size"]
    x = np.array(d["input"], dtype=np.float64).reshape(2, size, size, 3).transpose(0, 3, 1, 2)  # NHWC -> NCHW
    y = np.array(d["output"]).reshape(x.shape[0], -1)
    return d, sd, x, y

def conv(x, w, b=None, stride=1, pad=0, groups=1):
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, co, oh, ow))
    for i in range(kh):
        for j in range(kw):
            xs = xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            if groups == 1:
                out += np.einsum("nchw,oc->nohw", xs, w[:, :, i, j])
            else:
                assert groups == c == co and ci == 1
                out += xs * w[:, 0, i, j][None, :, None, None]
    if b is not None: out += b[None, :, None, None]
    return out

def bn(x, sd, p, eps=1e-5):
    s = lambda a: a[None, :, None, None]
    return (x - s(sd[p + ".running_mean"])) / np.sqrt(s(sd[p + ".running_var"]) + eps) * s(sd[p + ".weight"]) + s(sd[p + ".bias"])

def gelu(x): return 0.5 * x * (1 + erf(x / np.sqrt(2)).astype(np.float64))
def silu(x): return x / (1 + np.exp(-x))
def relu(x): return np.maximum(x, 0)
def relu6(x): return np.clip(x, 0, 6)
def linear(x, sd, p): return x @ sd[p + ".weight"].T + sd[p + ".bias"]
def ln_last(x, w, b, eps):
    m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b
def ln_cf(x, sd, p, eps=1e-6):  # convnext channels_first
    u = x.mean(1, keepdims=True); s = ((x - u) ** 2).mean(1, keepdims=True)
    x = (x - u) / np.sqrt(s + eps)
    return sd[p + ".weight"][:, None, None] * x + sd[p + ".bias"][:, None, None]

def convmixer(sd, x, P):
    x = bn(gelu(conv(x, sd["stem.0.weight"], sd["stem.0.bias"], stride=P)), sd, "stem.2")
    for i in range(8):
        q = f"blocks.{i}"
        dw = bn(gelu(conv(x, sd[q + ".depthwise.0.weight"], sd[q + ".depthwise.0.bias"], pad=2, groups=512)), sd, q + ".depthwise.2")
        x = x + dw
        x = bn(gelu(conv(x, sd[q + ".pointwise.0.weight"], sd[q + ".pointwise.0.bias"])), sd, q + ".pointwise.2")
    return linear(x.mean((2, 3)), sd, "head.2")

def convnext(sd, x):
    dims = [32, 64, 128, 512]
    for i in range(4):
        if i == 0:
            x = conv(x, sd["downsample_layers.0.0.weight"], sd["downsample_layers.0.0.bias"], stride=4)
            x = ln_cf(x, sd, "downsample_layers.0.1")
        else:
            x = ln_cf(x, sd, f"downsample_layers.{i}.0")
            x = conv(x, sd[f"downsample_layers.{i}.1.weight"], sd[f"downsample_layers.{i}.1.bias"], stride=2)
        q = f"stage_layers.{i}.blocks.0"
        y = conv(x, sd[q + ".block.0.weight"], sd[q + ".block.0.bias"], pad=3, groups=dims[i])
        y = y.transpose(0, 2, 3, 1)
        y = ln_last(y, sd[q + ".block.2.weight"], sd[q + ".block.2.bias"], 1e-6)
        y = linear(gelu(linear(y, sd, q + ".block.3")), sd, q + ".block.5")
        y = y.transpose(0, 3, 1, 2)
        x = x + y * sd[q + ".gamma"].reshape(-1, 1, 1)
    x = x.mean((-2, -1))
    return linear(ln_last(x, sd["cls.0.weight"], sd["cls.0.bias"], 1e-6), sd, "cls.1")

def shufflenet(sd, x):
    def seq(x, p, items):
        for idx, it in enumerate(items):
            if it == "relu": x = relu(x)
            elif it == "bn": x = bn(x, sd, f"{p}.{idx}")
            else:
                s, g = it
                w = sd[f"{p}.{idx}.weight"]
                x = conv(x, w, stride=s, pad=(w.shape[2] - 1) // 2, groups=(w.shape[0] if g else 1))
        return x
    x = seq(x, "conv1", [(2, False), "bn", "relu"])
    # maxpool 3, s2, p1 (pad -inf)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    oh = (x.shape[2] + 2 - 3) // 2 + 1; ow = (x.shape[3] + 2 - 3) // 2 + 1
    x = np.max(np.stack([xp[:, :, i:i + 2 * (oh - 1) + 1:2, j:j + 2 * (ow - 1) + 1:2] for i in range(3) for j in range(3)]), 0)
    for s, rep in zip([2, 3, 4], [4, 8, 4]):
        for u in range(rep):
            p = f"stage{s}.{u}"
            b2 = lambda t, st: seq(t, p + ".branch2", [(1, False), "bn", "relu", (st, True), "bn", (1, False), "bn", "relu"])
            if u == 0:
                b1 = seq(x, p + ".branch1", [(2, True), "bn", (1, False), "bn", "relu"])
                x = np.concatenate([b1, b2(x, 2)], 1)
            else:
                c = x.shape[1] // 2
                x = np.concatenate([x[:, :c], b2(x[:, c:], 1)], 1)
    x = seq(x, "conv5", [(1, False), "bn", "relu"])
    return linear(x.mean((2, 3)), sd, "fc")

def starnet(sd, x):
    def convbn(x, p, stride=1, pad=0, groups=1, with_bn=True):
        x = conv(x, sd[p + ".conv.weight"], sd[p + ".conv.bias"], stride=stride, pad=pad, groups=groups)
        return bn(x, sd, p + ".bn") if with_bn else x
    x = relu6(convbn(x, "stem.0", 2, 1))
    for i, depth in enumerate([2, 2, 8, 3]):
        dim = 24 * 2 ** i
        x = convbn(x, f"stages.{i}.0", 2, 1)
        for j in range(depth):
            q = f"stages.{i}.{j + 1}"
            inp = x
            h = convbn(x, q + ".dwconv", 1, 3, dim)
            h = relu6(convbn(h, q + ".f1", with_bn=False)) * convbn(h, q + ".f2", with_bn=False)
            h = convbn(convbn(h, q + ".g"), q + ".dwconv2", 1, 3, dim, with_bn=False)
            x = inp + h
    x = bn(x, sd, "norm").mean((2, 3))
    return linear(x, sd, "head")

def mobilevit(sd, x):
    def cba(x, p, stride=1, pad=None, groups=1, act=silu):
        w = sd[p + ".0.weight"]
        pad = (w.shape[2] - 1) // 2 if pad is None else pad
        return act(bn(conv(x, w, stride=stride, pad=pad, groups=groups), sd, p + ".1"))
    def ir(x, p, cin, cout, s):
        h = silu(bn(conv(x, sd[p + ".block.0.weight"]), sd, p + ".block.1"))
        h = silu(bn(conv(h, sd[p + ".block.3.weight"], stride=s, pad=1, groups=h.shape[1]), sd, p + ".block.4"))
        h = bn(conv(h, sd[p + ".block.6.weight"]), sd, p + ".block.7")
        return h + x if (s == 1 and cin == cout) else h
    def enc_layer(z, p, heads=4):
        B, N, d = z.shape; hd = d // heads
        qkv = z @ sd[p + ".self_attn.in_proj_weight"].T + sd[p + ".self_attn.in_proj_bias"]
        q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        sp = lambda t: t.reshape(B, N, heads, hd).transpose(0, 2, 1, 3)
        q, k, v = sp(q), sp(k), sp(v)
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        a = np.exp(a - a.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(B, N, d)
        o = linear(o, sd, p + ".self_attn.out_proj")
        z = ln_last(z + o, sd[p + ".norm1.weight"], sd[p + ".norm1.bias"], 1e-5)
        f = linear(gelu(linear(z, sd, p + ".linear1")), sd, p + ".linear2")
        return ln_last(z + f, sd[p + ".norm2.weight"], sd[p + ".norm2.bias"], 1e-5)
    def mvit(x, p):
        y = cba(x, p + ".local_conv")
        B, C, H, W = y.shape
        z = cba(y, p + ".reduce_conv")
        z = z.reshape(B, z.shape[1], H * W).transpose(0, 2, 1)  # flatten(2).transpose(1,2)
        for l in range(2): z = enc_layer(z, f"{p}.transformer.layers.{l}")
        z = z.transpose(0, 2, 1).reshape(B, -1, H, W)
        z = cba(z, p + ".expand_conv")
        return x + y + z
    x = cba(x, "conv1", stride=2)
    x = ir(x, "layer1.0", 32, 64, 1)
    x = ir(x, "layer2.0", 64, 128, 2); x = ir(x, "layer2.1", 128, 128, 1)
    x = ir(x, "layer3.0", 128, 128, 2); x = mvit(x, "layer3.1")
    x = ir(x, "layer4.0", 128, 256, 2); x = mvit(x, "layer4.1")
    x = ir(x, "layer5.0", 256, 256, 2); x = mvit(x, "layer5.1")
    x = cba(x, "conv_exp")
    return linear(x.mean((2, 3)), sd, "fc")

snippets = []
for path in sys.argv[1:]:
    d, sd, x, y = load(path)
    f = {"convmixer": lambda: convmixer(sd, x, d["options"].get("patchSize", 7)), "convnext": lambda: convnext(sd, x),
         "shufflenet": lambda: shufflenet(sd, x), "starnet": lambda: starnet(sd, x), "mobilevit": lambda: mobilevit(sd, x)}[d["id"]]
    ref = f()
    err = np.abs(ref - y).max(); scale = np.abs(ref).max()
    rows = np.abs(ref[0] - ref[1]).max()
    print(f"{d['id']:10s} max|ours-ref| {err:.3e}  max|ref| {scale:.3e}  rel {err/scale:.2e}  row-diff {rows:.3e}")
    opts = f", options: {json.dumps(d['options'])}" if d["options"] else ""
    logits = ", ".join(f"{v:.8g}" for v in ref.reshape(-1))
    snippets.append(f"  {d['id']}: {{ size: {d['size']}{opts}, logits: [{logits}] }},")
print("\n".join(snippets))
