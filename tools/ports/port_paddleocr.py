"""PaddleOCR's text-direction classifier (ch_ppocr_mobile_v2.0_cls: MobileNetV3-small, scale 0.35,
ppocr/modeling/backbones/rec_mobilenet_v3.py plus ClsHead) re-implemented in PyTorch as a person
porting it would, with the weights copied from the Constant nodes of the paddle2onnx model.

What a faithful port must keep from Paddle: BatchNorm epsilon 1e-5 (torchvision's MobileNetV3
uses 1e-3); the SE gate F.hardsigmoid(x, slope=0.2, offset=0.5) (PyTorch's nn.Hardsigmoid is
x/6 + 1/2); symmetric paddings (k-1)/2 on every conv, strided ones included."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from port_common import (attribute, bgr_injection, changes_injection, copy_parameter, nodes_of, onnx_weights,
                         producer)

SCALE = 0.35
# kernel, expansion, output channels, SE, activation, stride (rec_mobilenet_v3 "small", small_stride [2,2,2,2])
SMALL = [(3, 16, 16, True, "relu", (2, 1)), (3, 72, 24, False, "relu", (2, 1)), (3, 88, 24, False, "relu", 1),
         (5, 96, 40, True, "hardswish", (2, 1)), (5, 240, 40, True, "hardswish", 1),
         (5, 240, 40, True, "hardswish", 1), (5, 120, 48, True, "hardswish", 1),
         (5, 144, 48, True, "hardswish", 1), (5, 288, 96, True, "hardswish", (2, 1)),
         (5, 576, 96, True, "hardswish", 1), (5, 576, 96, True, "hardswish", 1)]


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Bugs:
    """The port's bugs; all default is the faithful port."""

    def __init__(self, tf_same_padding=False, bn_eps=1e-5, torch_hardsigmoid=False, bgr_input=False):
        self.tf_same_padding = tf_same_padding      # ZeroPad2d TF-SAME (bottom/right) before strided convs
        self.bn_eps = bn_eps                        # 1e-3: torchvision's MobileNetV3 BatchNorm
        self.torch_hardsigmoid = torch_hardsigmoid  # nn.Hardsigmoid (x/6 + 1/2) as the SE gate
        self.bgr_input = bgr_input                  # channels reversed inside the graph


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def same_pads(k, stride, size):
    """ZeroPad2d (left, right, top, bottom) of TF SAME for an input of `size` (h, w): the total
    max((ceil(n / s) - 1) * s + k - n, 0), the odd pixel at the bottom/right. A static port computes it
    for the model's input size (48 x 192)."""
    def total(n, s):
        return max((-(-n // s) - 1) * s + k - n, 0)
    (sh, sw), (h, w) = pair(stride), size
    th, tw = total(h, sh), total(w, sw)
    return (tw // 2, tw - tw // 2, th // 2, th - th // 2)


def out_size(size, stride):
    (sh, sw), (h, w) = pair(stride), size
    return (-(-h // sh), -(-w // sw))


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, groups, act, bugs, size=None):
        super().__init__()
        strided = stride != 1
        self.pad = nn.ZeroPad2d(same_pads(k, stride, size)) if strided and bugs.tf_same_padding else None
        self.conv = nn.Conv2d(cin, cout, k, stride, 0 if self.pad else (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=bugs.bn_eps)
        self.act = {"relu": nn.ReLU(), "hardswish": nn.Hardswish(), None: nn.Identity()}[act]

    def forward(self, x):
        if self.pad is not None:
            x = self.pad(x)
        return self.act(self.bn(self.conv(x)))


class PaddleHardSigmoid(nn.Module):
    """paddle.nn.functional.hardsigmoid(x, slope, offset)."""

    def __init__(self, slope=0.2, offset=0.5):
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x):
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)


class SE(nn.Module):
    def __init__(self, channels, bugs):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, channels // 4, 1)
        self.conv2 = nn.Conv2d(channels // 4, channels, 1)
        self.gate = nn.Hardsigmoid() if bugs.torch_hardsigmoid else PaddleHardSigmoid(0.2, 0.5)

    def forward(self, x):
        return x * self.gate(self.conv2(F.relu(self.conv1(self.pool(x)))))


class ResidualUnit(nn.Module):
    def __init__(self, cin, mid, cout, k, stride, se, act, bugs, size):
        super().__init__()
        self.expand = ConvBN(cin, mid, 1, 1, 1, act, bugs)
        self.depthwise = ConvBN(mid, mid, k, stride, mid, act, bugs, size)
        self.se = SE(mid, bugs) if se else None
        self.linear = ConvBN(mid, cout, 1, 1, 1, None, bugs)
        self.shortcut = stride == 1 and cin == cout

    def forward(self, x):
        y = self.depthwise(self.expand(x))
        if self.se is not None:
            y = self.se(y)
        y = self.linear(y)
        return x + y if self.shortcut else y


class TextDirectionClassifier(nn.Module):
    def __init__(self, bugs):
        super().__init__()
        self.bgr_input = bugs.bgr_input
        cin, size = make_divisible(16 * SCALE), (48, 192)
        self.conv1 = ConvBN(3, cin, 3, 2, 1, "hardswish", bugs, size)
        size = out_size(size, 2)
        units = []
        for k, exp, c, se, act, stride in SMALL:
            mid, cout = make_divisible(SCALE * exp), make_divisible(SCALE * c)
            units.append(ResidualUnit(cin, mid, cout, k, stride, se, act, bugs, size))
            cin, size = cout, out_size(size, stride)
        self.blocks = nn.Sequential(*units)
        self.conv2 = ConvBN(cin, make_divisible(SCALE * 576), 1, 1, 1, "hardswish", bugs)
        self.pool = nn.MaxPool2d(2, 2)
        self.head_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(make_divisible(SCALE * 576), 2)

    def forward(self, x):
        if self.bgr_input:
            x = x[:, [2, 1, 0]]
        x = self.pool(self.conv2(self.blocks(self.conv1(x))))
        return F.softmax(self.fc(self.head_pool(x).flatten(1)), dim=1)


def build(source, bugs):
    """The port with the Source's weights copied in: Paddle's parameters in graph order (each Conv's
    weight and bias, then its BatchNormalization's scale, bias, mean and variance), the fc layer's
    [in, out] matrix transposed into nn.Linear."""
    w = onnx_weights(source)
    model = TextDirectionClassifier(bugs)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    s_convs, s_bns = nodes_of(source, "Conv"), nodes_of(source, "BatchNormalization")
    if (len(convs), len(bns)) != (len(s_convs), len(s_bns)):
        raise ValueError(f"the port has {len(convs)} Conv/{len(bns)} BN, the Source {len(s_convs)}/{len(s_bns)}")
    for module, node in zip(convs, s_convs):
        copy_parameter(module.weight, w[node.input[1]], node.input[1])
        if len(node.input) > 2:
            copy_parameter(module.bias, w[node.input[2]], node.input[2])
    for module, node in zip(bns, s_bns):
        for param, value in zip((module.weight, module.bias, module.running_mean, module.running_var), node.input[1:]):
            copy_parameter(param, w[value], value)
    matmul, = nodes_of(source, "MatMul")
    copy_parameter(model.fc.weight, w[matmul.input[1]].T, matmul.input[1])
    bias = [n for n in nodes_of(source, "Add") if matmul.output[0] in n.input][0].input[1]
    copy_parameter(model.fc.bias, w[bias], bias)
    return model


def example_input():
    return torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 48, 192)).astype(np.float32))


def export_args():
    return {"input_names": ["x"], "output_names": ["probabilities"],
            "dynamic_axes": {"x": {0: "N", 3: "W"}, "probabilities": {0: "N"}}}


# ---- ground truth ----

def paired_convs(source, target):
    return list(zip(nodes_of(source, "Conv"), nodes_of(target, "Conv")))


def truth_tf_same_padding(source, target, net):
    """The strided convs whose TF-SAME pads differ from Paddle's symmetric ones (at 48 x 192 the
    last strided conv sees 3 rows, where SAME pads 2 on each side: the same as Paddle)."""
    pad_of = {id(m.conv): m.pad for m in net.modules() if isinstance(m, ConvBN)}
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]  # the Source's Conv order (build checks it)
    changes = []
    for (s, t), conv in zip(paired_convs(source, target), convs):
        if pad_of.get(id(conv)) is None:
            continue
        left, right, top, bottom = pad_of[id(conv)].padding
        same = [top, left, bottom, right]
        if same == list(attribute(s, "pads")):
            continue
        pad = producer(target, t.input[0])
        changes.append({"node": t.name, "pad_node": pad.name, "source_node": s.name,
                        "source_pads": list(attribute(s, "pads")), "target_pads": same})
    return changes_injection(
        "tf-same-padding", "LH",
        f"TF-SAME padding (ZeroPad2d, the odd row/column at the bottom/right) before {len(changes)} strided "
        "convolutions where Paddle pads (k-1)/2 on each side", changes,
        "each listed Conv's padding (its Pad node's pads plus its own) becomes the Source's symmetric pads: the Pad "
        "pads nothing (or is removed) and the Conv pads (k-1)/2",
        related_nodes=[c["pad_node"] for c in changes])


def truth_bn_eps(source, target, eps):
    s_bns, t_bns = nodes_of(source, "BatchNormalization"), nodes_of(target, "BatchNormalization")
    changes = [{"node": t.name, "source_node": s.name, "attribute": "epsilon", "old": eps,
                "new": attribute(s, "epsilon")} for s, t in zip(s_bns, t_bns)]
    return changes_injection(
        "bn-epsilon", "LH",
        f"BatchNorm epsilon {eps:g} (torchvision's MobileNetV3) where Paddle uses 1e-5, on all {len(changes)} "
        "BatchNormalization nodes (exported unfolded)", changes, "epsilon 1e-5 on each listed BatchNormalization")


def truth_torch_hardsigmoid(source, target):
    s_gates, t_gates = nodes_of(source, "HardSigmoid"), nodes_of(target, "HardSigmoid")
    t_gates = [n for n in t_gates if "/se/" in n.name]
    changes = [{"node": t.name, "source_node": s.name, "attribute": "alpha", "old": attribute(t, "alpha"),
                "new": attribute(s, "alpha")} for s, t in zip(s_gates, t_gates)]
    return changes_injection(
        "torch-hardsigmoid", "LH",
        f"nn.Hardsigmoid (x/6 + 1/2) as the SE gate where Paddle uses hardsigmoid(slope=0.2, offset=0.5), on "
        f"{len(changes)} SE blocks", changes, "HardSigmoid alpha 0.2 (beta 0.5) on each listed node")


def truth_bgr_input(target):
    return bgr_injection([n for n in nodes_of(target, "Gather") if n.input[0] == target.graph.input[0].name],
                         "the port reverses the channels at the top of forward (x[:, [2, 1, 0]], for cv2's BGR "
                         "images)")
