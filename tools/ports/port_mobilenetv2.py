"""MobileNetV2 re-implemented in PyTorch the way a person porting the Keras model would,
with the weights of the float Source (the assets' int8 QDQ model through fetafix-dequantize).

The Keras model (STMicroelectronics' MobileNetV2 1.0 224) differs from torchvision's in ways a
port must follow: the input is raw uint8 NHWC, dequantized in the graph ((x - 127) * s); strided
convolutions pad TF-'SAME' style (one row and column at the bottom and right, not one on each
side); the depthwise activation is ReLU followed by a per-channel upper bound
(tf.clip_by_value with a learned vector), not ReLU6; the other activations are ReLU6."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from port_common import (activation_after, attribute, bgr_injection, changes_injection, copy_parameter, nodes_of,
                         onnx_weights, producer)

# (expansion, output channels, repeats, first stride), Keras MobileNetV2.
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
          (6, 320, 1, 1)]


class Bugs:
    """The port's bugs; all False is the faithful port."""

    def __init__(self, symmetric_padding=False, relu_for_relu6=False, bgr_input=False, softmax_last_axis=False):
        self.symmetric_padding = symmetric_padding  # PyTorch padding=1 on strided convs instead of TF SAME
        self.relu_for_relu6 = relu_for_relu6        # nn.ReLU where Keras has ReLU6
        self.bgr_input = bgr_input                  # channels reversed inside the graph
        self.softmax_last_axis = softmax_last_axis  # 1x1-conv classifier, softmax over the last axis


def conv(cin, cout, k, stride, groups, bugs):
    """Conv with Keras 'same' padding: a strided conv pads only bottom/right (TF SAME); the buggy
    port uses PyTorch's symmetric padding=k//2 there."""
    if stride == 2 and not bugs.symmetric_padding:
        return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(cin, cout, k, stride, 0, groups=groups))
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups)


def relu6(bugs):
    return nn.ReLU() if bugs.relu_for_relu6 else nn.ReLU6()


class ChannelClip(nn.Module):
    """tf.nn.relu then tf.clip_by_value(x, 0, max) with a per-channel max."""

    def __init__(self, channels):
        super().__init__()
        self.max = nn.Parameter(torch.zeros(1, channels, 1, 1), requires_grad=False)

    def forward(self, x):
        return torch.min(F.relu(x), self.max)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, expansion, stride, bugs):
        super().__init__()
        mid = cin * expansion
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1), relu6(bugs)) if expansion != 1 else None
        self.depthwise = nn.Sequential(conv(mid, mid, 3, stride, mid, bugs), ChannelClip(mid))
        self.project = nn.Conv2d(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class InputDequantize(nn.Module):
    """uint8 NHWC -> float NCHW, (x - zero_point) * scale as the Source's DequantizeLinear."""

    def __init__(self, scale, zero_point, bgr):
        super().__init__()
        self.scale, self.zero_point, self.bgr = scale, zero_point, bgr

    def forward(self, x):
        x = (x.float() - self.zero_point) * self.scale
        x = x.permute(0, 3, 1, 2)
        return x[:, [2, 1, 0]] if self.bgr else x


class MobileNetV2(nn.Module):
    def __init__(self, scale, zero_point, bugs):
        super().__init__()
        self.input = InputDequantize(scale, zero_point, bugs.bgr_input)
        self.stem = nn.Sequential(conv(3, 32, 3, 2, 1, bugs), relu6(bugs))
        blocks, cin = [], 32
        for expansion, cout, repeats, stride in BLOCKS:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1, bugs))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, 1280, 1), relu6(bugs))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.softmax_last_axis = bugs.softmax_last_axis
        # The Keras head is Dense; a port that keeps the pooled map 4-D uses a 1x1 conv instead.
        self.classifier = nn.Conv2d(1280, 1000, 1) if self.softmax_last_axis else nn.Linear(1280, 1000)

    def forward(self, x):
        x = self.pool(self.head(self.blocks(self.stem(self.input(x)))))
        if self.softmax_last_axis:
            return F.softmax(self.classifier(x), dim=-1).flatten(1)
        return F.softmax(self.classifier(x.flatten(1)), dim=1)


def source_parameters(source):
    """The Source's weights in graph order: every Conv's (weight, bias), each depthwise
    activation's per-channel bound (the Min nodes), the classifier (MatMul + Add), and the
    input DequantizeLinear's scale and zero point."""
    w = onnx_weights(source)
    convs = [(n.name, w[n.input[1]], w[n.input[2]]) for n in nodes_of(source, "Conv")]
    bounds = [w[n.input[1]] for n in nodes_of(source, "Min")]
    matmul, = nodes_of(source, "MatMul")
    add = [n for n in nodes_of(source, "Add") if matmul.output[0] in n.input][0]
    dq = [n for n in nodes_of(source, "DequantizeLinear") if n.input[0] == source.graph.input[0].name][0]
    return {"convs": convs, "bounds": bounds, "fc": (w[matmul.input[1]], w[add.input[1]]),
            "input_scale": float(w[dq.input[1]]), "input_zero_point": float(w[dq.input[2]])}


def build(source, bugs):
    """The port with the Source's weights copied in."""
    p = source_parameters(source)
    model = MobileNetV2(p["input_scale"], p["input_zero_point"], bugs)
    ports = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m is not model.classifier]
    if len(ports) != len(p["convs"]):
        raise ValueError(f"the port has {len(ports)} convolutions, the Source {len(p['convs'])}")
    for module, (name, weight, bias) in zip(ports, p["convs"]):
        copy_parameter(module.weight, weight, name)
        copy_parameter(module.bias, bias, name)
    clips = [m for m in model.modules() if isinstance(m, ChannelClip)]
    for module, bound in zip(clips, p["bounds"]):
        copy_parameter(module.max, bound, "depthwise clip bound")
    weight, bias = p["fc"]
    if bugs.softmax_last_axis:
        copy_parameter(model.classifier.weight, weight.T.reshape(1000, 1280, 1, 1), "classifier")
    else:
        copy_parameter(model.classifier.weight, weight.T, "classifier")
    copy_parameter(model.classifier.bias, bias.reshape(-1), "classifier bias")
    return model


def example_input():
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8))


def export_args():
    return {"input_names": ["image"], "output_names": ["probabilities"],
            "dynamic_axes": {"image": {0: "N"}, "probabilities": {0: "N"}}}


# ---- ground truth: which Target nodes each bug made faulty ----

def paired_convs(source, target):
    """Source and Target Conv nodes in graph order, paired (the port copies weights in that order;
    the 1x1-conv classifier of the softmax port has no Source Conv)."""
    s, t = nodes_of(source, "Conv"), nodes_of(target, "Conv")
    return list(zip(s, t[:len(s)]))


def effective_pads(model, conv_node):
    """[top, left, bottom, right] of a Conv, a Pad node right before it included."""
    pads = list(attribute(conv_node, "pads", [0, 0, 0, 0]))
    before = producer(model, conv_node.input[0])
    while before is not None and before.op_type in ("Identity", "Clip"):
        before = producer(model, before.input[0])
    if before is not None and before.op_type == "Pad":
        w = onnx_weights(model)
        pad = attribute(before, "pads")
        if pad is None:
            pad = w.get(before.input[1])
            if pad is None:  # torch.onnx computes the pads at opset >= 11: evaluate that chain
                return None
        pad = [int(v) for v in pad]
        pads = [pads[0] + pad[2], pads[1] + pad[3], pads[2] + pad[6], pads[3] + pad[7]]
    return pads


def truth_symmetric_padding(source, target):
    changes = []
    for s, t in paired_convs(source, target):
        if attribute(s, "strides") == [2, 2]:
            changes.append({"node": t.name, "source_node": s.name, "attribute": "pads",
                            "old": list(attribute(t, "pads")), "new": effective_pads(source, s)})
    return changes_injection(
        "symmetric-padding", "LH",
        f"PyTorch's symmetric padding=1 on the {len(changes)} strided 3x3 convolutions where Keras pads TF-SAME "
        "(bottom/right only)", changes,
        "pads [0,0,1,1] on each listed Target Conv (the Source pads with a Pad node before a pads-free Conv, or "
        "with asymmetric Conv pads)")


def truth_relu_for_relu6(source, target):
    changes = []
    for s, t in paired_convs(source, target):
        s_act, t_act = activation_after(source, s), activation_after(target, t)
        if s_act is not None and s_act.op_type == "Clip" and t_act is not None and t_act.op_type == "Relu":
            changes.append({"node": t_act.name, "source_node": s_act.name, "layer": t.name, "source_layer": s.name,
                            "old": "Relu", "new": "Clip(0, 6)"})
    return changes_injection(
        "relu-for-relu6", "LH", f"nn.ReLU where Keras has ReLU6 ({len(changes)} activations: stem, expansions, head)",
        changes, "each listed Relu computes clip(x, 0, 6) again (Relu rewritten as Clip with max 6, in place)")


def truth_bgr_input(target):
    return bgr_injection([n for n in nodes_of(target, "Gather") if n.name.startswith("/input/")],
                         "the port reverses the channels inside the graph (x[:, [2, 1, 0]]) after dequantizing the "
                         "input")


def truth_softmax_last_axis(source, target):
    s, = nodes_of(source, "Softmax")
    t, = nodes_of(target, "Softmax")
    return changes_injection(
        "softmax-last-axis", "LH",
        "classifier kept 4-D ([N,1000,1,1], a 1x1 Conv) and softmax over the last axis (size 1): every "
        "probability is 1",
        [{"node": t.name, "source_node": s.name, "attribute": "axis", "old": attribute(t, "axis"), "new": 1}],
        "Softmax axis 1 (the class axis) on the listed node")
