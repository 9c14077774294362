"""Writes a CIFAR-variant ResNet-18 encoder as ONNX (opset 17), built with
onnx.helper and random weights, for the end-to-end benchmark (bench/e2e/run.py).

    make_resnet18.py OUT.onnx

Input `images` float32 [batch, 3, 32, 32]. Backbone: conv3x3 64 (stride 1, no
max-pool), four stages of two BasicBlocks (64, 128, 256, 512 channels; stride
2 and a 1x1 projection shortcut at the first block of stages 2-4), each conv
with a bias (BatchNorm folded in), ReLU, GlobalAveragePool, Flatten ->
`features` [batch, 512]. Projection head: Gemm 512->512, Relu, Gemm 512->128
-> `embedding` [batch, 128]. He-normal weights from numpy seed 0 (about 11.5 M
parameters, 46 MB).

Without BatchNorm a random ReLU network's features share one large positive
direction, and every embedding would have cosine similarity ~0.99 with every
other. So the head's first Gemm has a BatchNorm folded in, as a trained
SimCLR head has: the per-channel mean and standard deviation of `features`
over 128 N(0, 1) noise images (numpy seed 1, run once through ONNX Runtime
while building), rounded to float16 so that last-bit differences between
machines' kernels (all but) never change the file; on one machine it is the
same byte for byte on every run. Nothing here depends on a dataset.
"""
import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.params = 0
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def tensor(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        self.params += array.size

    def conv(self, x, cin, cout, k, stride, gain=1.0):
        """Conv with He-normal weights (std sqrt(2 / fan_in), times `gain`) and
        a small bias: the folded BatchNorm's shift."""
        n = self.name("conv")
        w = self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k)) * gain
        b = self.rng.standard_normal(cout) * 0.01
        self.tensor(n + ".weight", w)
        self.tensor(n + ".bias", b)
        pad = k // 2
        self.nodes.append(helper.make_node(
            "Conv", [x, n + ".weight", n + ".bias"], [n], name=n,
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4))
        return n

    def op(self, kind, inputs, out=None, **attrs):
        out = out or self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def gemm(self, x, cin, cout, out=None, mean=None, std=None):
        """Gemm with He-normal weights; with `mean` and `std`, a BatchNorm of
        the input with these statistics folded in (w / std, b - w / std . mean)."""
        n = out or self.name("fc")
        w = self.rng.standard_normal((cout, cin)) * np.sqrt(2.0 / cin)
        b = self.rng.standard_normal(cout) * 0.01
        if mean is not None:
            w = w / std[None, :]
            b = b - w @ mean
        self.tensor(n + ".weight", w)
        self.tensor(n + ".bias", b)
        self.nodes.append(helper.make_node(
            "Gemm", [x, n + ".weight", n + ".bias"], [n], name=n, transB=1))
        return n

    def block(self, x, cin, cout, stride):
        """BasicBlock: relu(conv-relu-conv(x) + shortcut(x)). The second conv
        is scaled by 1/sqrt(2) so that activations do not double per block
        without BatchNorm's running statistics."""
        h = self.op("Relu", [self.conv(x, cin, cout, 3, stride)])
        h = self.conv(h, cout, cout, 3, 1, gain=np.sqrt(0.5))
        short = x if stride == 1 and cin == cout else self.conv(x, cin, cout, 1, stride, gain=np.sqrt(0.5))
        return self.op("Relu", [self.op("Add", [h, short])])


def build(seed=0):
    b = Builder(seed)
    x = b.op("Relu", [b.conv("images", 3, 64, 3, 1)])
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for i in range(2):
            x = b.block(x, cin, cout, 2 if stage > 0 and i == 0 else 1)
            cin = cout
    pooled = b.op("GlobalAveragePool", [x])
    features = b.op("Flatten", [pooled], out="features", axis=1)
    mean, std = feature_statistics(model(b, [FEATURES]))
    h = b.op("Relu", [b.gemm(features, 512, 512, mean=mean, std=std)])
    b.gemm(h, 512, 128, out="embedding")
    m = model(b, [EMBEDDING, FEATURES])
    onnx.checker.check_model(m, full_check=True)
    return m, b.params


IMAGES = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])
EMBEDDING = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 128])
FEATURES = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 512])


def model(b, outputs):
    graph = helper.make_graph(b.nodes, "resnet18_cifar", [IMAGES], outputs, initializer=b.inits)
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="embedeval-bench-e2e", producer_version="1")
    m.ir_version = 8  # opset 17's IR version: loadable by any ONNX Runtime >= 1.13
    return m


def feature_statistics(backbone, n=128, seed=1):
    """Per-channel mean and std of `features` over n N(0, 1) noise images,
    rounded to float16 (so that last-bit differences between machines'
    kernels do not change the file, but at a rounding boundary)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(backbone.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)
    f = np.concatenate([sess.run(["features"], {"images": x[i:i + 32]})[0] for i in range(0, n, 32)])
    f = f.astype(np.float64)
    mean = f.mean(0).astype(np.float16).astype(np.float64)
    std = np.maximum(f.std(0), 1e-3).astype(np.float16).astype(np.float64)
    return mean, std


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model, params = build(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(args.out))
    print(f"{args.out}: {params:,} parameters, {args.out.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
