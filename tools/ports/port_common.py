"""Shared pieces of the port corpus: reading weights out of an ONNX model, exporting a
PyTorch module with torch.onnx deterministically, finding nodes of the exported graph, and
the case.json / ground-truth records (the formats of docs/corpus.md and docs/inject.md)."""

import io
import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import numpy_helper

TORCH_VERSION = ".".join(torch.__version__.split(".")[:2])
CONVERTER = f"torch.onnx {TORCH_VERSION} port"


def onnx_weights(model):
    """Every initializer and Constant-node output of the top-level graph, by value name."""
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            weights[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return weights


def attribute(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def copy_parameter(param, value, label):
    """Copies a numpy array into a torch parameter/buffer, refusing a shape mismatch (the port
    and the Source disagree about the architecture: a bug in the port script, not a port bug)."""
    value = np.array(value, dtype=np.float32, copy=True)
    if tuple(param.shape) != value.shape:
        raise ValueError(f"{label}: the port expects {tuple(param.shape)}, the Source has {value.shape}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


def export(module, example, opset, input_names, output_names, dynamic_axes, keep_batchnorm=False):
    """The ONNX model torch.onnx writes for `module` (in eval mode). keep_batchnorm exports with
    TrainingMode.PRESERVE, which leaves BatchNormalization nodes unfolded (in EVAL mode torch.onnx
    folds every BN that follows a Conv into the Conv's weights)."""
    module.eval()
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.onnx's UserWarnings about shape inference
        torch.onnx.export(module, example, buffer, opset_version=opset, training=mode,
                          input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def consumers(model, value):
    return [n for n in model.graph.node if value in n.input]


def producer(model, value):
    for n in model.graph.node:
        if value in n.output:
            return n
    return None


def nodes_of(model, op_type):
    return [n for n in model.graph.node if n.op_type == op_type]


def activation_after(model, conv, skip=("Identity", "Clip")):
    """The first node after a Conv along single consumers that is not a pass-through: for the
    dequantized Source, the range Clips its activation quantization left are skipped unless they
    are the activation itself (Clip 0..6)."""
    value = conv.output[0]
    while True:
        users = consumers(model, value)
        if len(users) != 1:
            return None
        node = users[0]
        if node.op_type in skip and not is_relu6(model, node):
            value = node.output[0]
            continue
        return node


def clip_bounds(model, node):
    """(min, max) of a Clip in either form (attributes below opset 11, inputs from 11)."""
    lo, hi = attribute(node, "min"), attribute(node, "max")
    weights = onnx_weights(model)
    if len(node.input) > 1 and node.input[1]:
        lo = float(weights[node.input[1]]) if node.input[1] in weights else None
    if len(node.input) > 2 and node.input[2]:
        hi = float(weights[node.input[2]]) if node.input[2] in weights else None
    return lo, hi


def is_relu6(model, node):
    if node.op_type != "Clip":
        return False
    lo, hi = clip_bounds(model, node)
    return lo == 0.0 and hi == 6.0


@dataclass
class Injection:
    """One planted port bug (or the port itself, as a benign rewrite) in the ground-truth
    format of `fetafix inject` (docs/inject.md), without an edit list: a port is not an edit of
    the Source."""
    spec: str                 # "port:relu-for-relu6", "benign:torch-port:opset=13"
    type: str                 # PP ID TSS WB LH CG, or benign
    fault: str
    description: str
    nodes: list = field(default_factory=list)      # Target nodes that are faulty (or added)
    values: list = field(default_factory=list)
    details: dict = field(default_factory=dict)     # source_nodes, changes, expected_repair

    def to_json(self):
        return {"spec": self.spec, "type": self.type, "fault": self.fault, "benign": self.type == "benign",
                "nodes": self.nodes, "values": self.values, "description": self.description,
                "details": self.details}


def changes_injection(fault, type_, description, changes, expected_repair, **details):
    """A port bug counted per Target node: `changes` name each faulty node ("node") and the Source
    node it corresponds to ("source_node")."""
    return Injection(f"port:{fault}", type_, fault, description, nodes=[c["node"] for c in changes],
                     details={"changes": changes, "source_nodes": [c["source_node"] for c in changes],
                              **details, "expected_repair": expected_repair})


def bgr_injection(gathers, description):
    """The channel reversal a port does inside its graph (a Gather on the channel axis): PP."""
    return Injection("port:bgr-input", "PP", "bgr-input", description, nodes=[n.name for n in gathers],
                     details={"expected_repair": "feed the Target BGR (its preset with channels BGR), or remove "
                                                 "the Gather",
                              "expected_preprocess_overrides": {"channels": "BGR"}})


def ground_truth(injections):
    return {"format": "fetafix-injection", "version": 1, "seed": 0, "replayable": False,
            "injections": [i.to_json() for i in injections]}


def expected_counts(injections):
    """As src/inject/corpus.cpp counts them: WB and LH per node, other types per injection."""
    counts = {}
    for i in injections:
        if i.type == "benign":
            continue
        counts[i.type] = counts.get(i.type, 0) + (len(i.nodes) if i.type in ("WB", "LH") else 1)
    return counts


def write_atomic(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.replace(tmp, path)


def write_json(path, value):
    write_atomic(path, json.dumps(value, indent=2) + "\n")
