#!/usr/bin/python3
"""fetafix port corpus: real conversions made with torch.onnx (docs/corpus.md, "Port cases").

Each Source model of ../shared/assets is re-implemented in PyTorch the way a person porting it
would, its weights copied in, and exported with torch.onnx: one faithful port per model (benign:
nothing to repair) and ports carrying the bugs people make, one per case plus one with several.
Every case folder holds source.onnx, target.onnx, case.json (the corpus format of
src/inject/corpus.cpp, plus "converter" and "opset") and, where the model needs it, preset.json.
With --fetafix, each case is then checked with `fetafix compare` on --images: the faithful
port must agree with the Source on at least --min-agreement of them, every bug port must
disagree on some (check.json per case, checks.json for all).

Runs under Debian's python3 (python3-torch, python3-onnx, python3-numpy); scripts/make-ports.sh
builds what it needs and calls it."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import onnx  # noqa: E402
import torch  # noqa: E402

import port_mobilenetv2 as mnv2  # noqa: E402
import port_paddleocr as ocr  # noqa: E402
from port_common import (CONVERTER, Injection, expected_counts, export, ground_truth, write_atomic,  # noqa: E402
                         write_json)

PADDLE_ASSET = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
MOBILENET_ASSET = "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx"
PADDLE_PRESET = {"name": "paddle-ocr-cls", "width": 192, "height": 48, "layout": "NCHW", "crop": "stretch",
                 "filter": "bilinear", "scale": 1.0 / 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}

# name, kind, model, opset, bugs, note. The faithful ports and the bug ports spread over the opsets
# torch.onnx 1.13 writes (9 to 17), so opset-dependent forms (Clip bounds as inputs from 11,
# HardSwish from 14, Pad's pads as an input from 11) all occur.
CASES = [
    ("mobilenetv2-port", "benign", "mobilenetv2", 13, {},
     "faithful port: TF-SAME strided convs as ZeroPad2d + Conv, ReLU6, per-channel depthwise bound, Linear "
     "classifier; weights copied, exported in eval mode"),
    ("mobilenetv2-port-symmetric-padding", "single", "mobilenetv2", 11, {"symmetric_padding": True},
     "PyTorch padding=1 on the strided convs (torchvision's MobileNetV2) where Keras pads bottom/right"),
    ("mobilenetv2-port-relu-for-relu6", "single", "mobilenetv2", 13, {"relu_for_relu6": True},
     "nn.ReLU for every ReLU6 (the issue's report: fetafix transplanted Source regions one by one)"),
    ("mobilenetv2-port-bgr-input", "single", "mobilenetv2", 9, {"bgr_input": True},
     "channels reversed inside the graph after the input dequantization"),
    ("mobilenetv2-port-softmax-last-axis", "single", "mobilenetv2", 17, {"softmax_last_axis": True},
     "Keras-style 1x1-conv classifier left 4-D and softmax(dim=-1) over its 1-pixel last axis"),
    ("mobilenetv2-port-multi", "multi", "mobilenetv2", 14,
     {"symmetric_padding": True, "relu_for_relu6": True, "bgr_input": True},
     "symmetric padding, ReLU for ReLU6 and BGR input together"),
    ("paddleocr-port", "benign", "paddleocr", 11, {},
     "faithful port: BN eps 1e-5, SE gate clamp(0.2x + 0.5, 0, 1), nn.Hardswish, symmetric pads; BN folded by "
     "torch.onnx's eval export"),
    ("paddleocr-port-tf-same-padding", "single", "paddleocr", 9, {"tf_same_padding": True},
     "TF-SAME ZeroPad2d before the strided convs where Paddle pads (k-1)/2 on each side"),
    ("paddleocr-port-bn-epsilon", "single", "paddleocr", 14, {"bn_eps": 1e-3, "keep_batchnorm": True},
     "torchvision MobileNetV3's BatchNorm eps 1e-3 for Paddle's 1e-5, exported with BatchNormalization unfolded "
     "(TrainingMode.PRESERVE)"),
    ("paddleocr-port-torch-hardsigmoid", "single", "paddleocr", 13, {"torch_hardsigmoid": True},
     "nn.Hardsigmoid (x/6 + 1/2) as the SE gate for Paddle's hardsigmoid(slope=0.2, offset=0.5)"),
    ("paddleocr-port-bgr-input", "single", "paddleocr", 17, {"bgr_input": True},
     "channels reversed at the top of forward (cv2's BGR)"),
    ("paddleocr-port-multi", "multi", "paddleocr", 12,
     {"tf_same_padding": True, "bn_eps": 1e-3, "keep_batchnorm": True, "torch_hardsigmoid": True,
      "bgr_input": True},
     "TF-SAME padding, BN eps 1e-3 (unfolded), nn.Hardsigmoid gate and BGR input together"),
]

# Bugs of the list that these two models cannot have, and why (docs/corpus.md).
NOT_APPLICABLE = {
    "bn-epsilon (mobilenetv2)": "the Source has its BatchNorms folded into the convolutions (no BN node to port)",
    "avgpool-count-include-pad": "neither model has an AveragePool with padding (both end in a global pool)",
    "maxpool-ceil-mode": "only PaddleOCR has a MaxPool (2x2/2) and its input there is 2x96 at 48x192: even sizes, "
                         "so ceil_mode changes nothing",
    "resize-align-corners": "neither model has a Resize/Upsample",
    "gelu-tanh": "neither model has a GELU",
    "hardswish-params (mobilenetv2)": "MobileNetV2 has no hard-swish or hard-sigmoid",
    "relu-for-relu6 (paddleocr)": "PaddleOCR has no ReLU6 layer (its Clip(0,6) is inside hard-swish)",
    "softmax-axis (paddleocr)": "its output is [N,2]; the only wrong axis is the batch axis, which makes the output "
                                "depend on how images are batched",
    "flatten-nhwc": "both models pool to 1x1 before the classifier, so NHWC and NCHW flattening agree",
}


def model_description(model):
    if model == "mobilenetv2":
        return ("float MobileNetV2 with real ImageNet weights (fetafix-dequantize of the int8 QDQ asset); uint8 NHWC "
                "input")
    return "PaddleOCR text-direction classifier (paddle2onnx, opset 9, weights in Constant nodes), fed 48x192 photos"


def port_injection(model, opset, keep_batchnorm):
    forms = {"mobilenetv2": "uint8 input dequantized with Cast/Sub/Mul + Transpose, ZeroPad2d as Pad, ReLU6 as "
                            "Clip, Relu + Min for the depthwise bound, Flatten + Gemm classifier",
             "paddleocr": "hard-swish as HardSwish (opset >= 14) or x * HardSigmoid, the SE gate as Mul/Add/Clip, "
                          "Flatten + Gemm classifier"}[model]
    bn = "BatchNormalization kept" if keep_batchnorm else "BatchNormalization folded into the convolutions"
    return Injection(f"benign:torch-port:opset={opset}", "benign", "torch-port",
                     f"re-implemented in PyTorch {torch.__version__}, weights copied, exported with torch.onnx at "
                     f"opset {opset} ({bn}): new node and value names, {forms}")


def bug_injections(model, bugs, source, target, net):
    out = []
    if model == "mobilenetv2":
        if bugs.get("symmetric_padding"):
            out.append(mnv2.truth_symmetric_padding(source, target))
        if bugs.get("relu_for_relu6"):
            out.append(mnv2.truth_relu_for_relu6(source, target))
        if bugs.get("bgr_input"):
            out.append(mnv2.truth_bgr_input(target))
        if bugs.get("softmax_last_axis"):
            out.append(mnv2.truth_softmax_last_axis(source, target))
        return out
    if bugs.get("tf_same_padding"):
        out.append(ocr.truth_tf_same_padding(source, target, net))
    if bugs.get("bn_eps"):
        out.append(ocr.truth_bn_eps(source, target, bugs["bn_eps"]))
    if bugs.get("torch_hardsigmoid"):
        out.append(ocr.truth_torch_hardsigmoid(source, target))
    if bugs.get("bgr_input"):
        out.append(ocr.truth_bgr_input(target))
    return out


def port_model(model, source, opset, bugs):
    module = mnv2 if model == "mobilenetv2" else ocr
    flags = {k: v for k, v in bugs.items() if k != "keep_batchnorm"}
    net = module.build(source, module.Bugs(**flags))
    args = module.export_args()
    return net, export(net, module.example_input(), opset, args["input_names"], args["output_names"],
                  args["dynamic_axes"], keep_batchnorm=bugs.get("keep_batchnorm", False))


def preset_for(model, injections):
    """(preset argument, preset.json content or None, expected_preprocess)."""
    swap = any(i.fault == "bgr-input" for i in injections)
    if model == "mobilenetv2":
        return "uint8", None, ({"base": "uint8", "channels": "BGR"} if swap else None)
    return "preset.json", PADDLE_PRESET, (dict(PADDLE_PRESET, channels="BGR", name="paddle-ocr-cls-bgr")
                                          if swap else None)


def write_case(out, case, sources):
    name, kind, model, opset, bugs, note = case
    source_path, source = sources[model]
    net, target = port_model(model, source, opset, bugs)
    injections = [port_injection(model, opset, bugs.get("keep_batchnorm", False))]
    injections += bug_injections(model, bugs, source, target, net)
    preset, preset_file, expected_preprocess = preset_for(model, injections)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(source_path, os.path.join(folder, "source.onnx.tmp"))
    os.replace(os.path.join(folder, "source.onnx.tmp"), os.path.join(folder, "source.onnx"))
    write_atomic(os.path.join(folder, "target.onnx"), target.SerializeToString())
    if preset_file is not None:
        write_json(os.path.join(folder, "preset.json"), preset_file)
    write_json(os.path.join(folder, "case.json"), {
        "format": "fetafix-corpus-case", "version": 1, "name": name, "kind": kind, "model": model,
        "model_description": model_description(model), "paper_row": "real conversion (torch.onnx port)",
        "note": note, "converter": CONVERTER, "opset": opset, "faults": [i.spec for i in injections],
        "source_preprocess": preset, "target_preprocess": preset, "expected": expected_counts(injections),
        "expected_preprocess": expected_preprocess, "ground_truth": ground_truth(injections)})


def compare(fetafix, folder, case_json, images):
    """fetafix compare of one case: (images compared, disagreeing)."""
    def preset(key):
        p = case_json[key]
        return os.path.join(folder, p) if p.endswith(".json") else p
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "compare.json")
        run = subprocess.run([fetafix, "compare", os.path.join(folder, "source.onnx"), os.path.join(folder, "target.onnx"),
                              "--images", images, "--source-preprocess", preset("source_preprocess"),
                              "--target-preprocess", preset("target_preprocess"), "--json", report, "-q"],
                             capture_output=True, text=True)
        if run.returncode not in (0, 1):
            raise RuntimeError(f"{folder}: fetafix compare failed: {run.stderr.strip()}")
        with open(report) as f:
            summary = json.load(f)["summary"]
    return summary["samples_compared"], summary["disagreeing"]


def check_cases(out, names, fetafix, images, min_agreement):
    """Faithful ports must agree on at least min_agreement of the images, bug ports disagree on some."""
    results, failed = [], []
    for name in names:
        folder = os.path.join(out, name)
        with open(os.path.join(folder, "case.json")) as f:
            case_json = json.load(f)
        n, disagreeing = compare(fetafix, folder, case_json, images)
        agreement = 1.0 - disagreeing / n
        ok = agreement >= min_agreement if case_json["kind"] == "benign" else disagreeing > 0
        result = {"name": name, "kind": case_json["kind"], "images": n, "disagreeing": disagreeing,
                  "agreement": round(agreement, 4), "passed": ok}
        write_json(os.path.join(folder, "check.json"), result)
        results.append(result)
        print(f"{name:40s} {disagreeing:4d}/{n} disagree ({100 * agreement:.1f} % agree) {'ok' if ok else 'FAILED'}")
        if not ok:
            failed.append(name)
    write_json(os.path.join(out, "checks.json"), {"images": images, "min_agreement": min_agreement, "cases": results})
    return failed


def load_sources(args):
    """The Source of each model whose asset is there: PaddleOCR as it is, MobileNetV2 as the float
    model fetafix-dequantize derives from the int8 QDQ asset (written into OUT/sources)."""
    sources = {}
    mobilenet = args.mobilenetv2_source
    qdq = os.path.join(args.assets, MOBILENET_ASSET)
    if not mobilenet and args.dequantize and os.path.exists(qdq):
        mobilenet = os.path.join(args.out, "sources", "mobilenetv2-float.onnx")
        os.makedirs(os.path.dirname(mobilenet), exist_ok=True)
        subprocess.run([args.dequantize, qdq, mobilenet], check=True, stdout=subprocess.DEVNULL)
    if mobilenet and os.path.exists(mobilenet):
        sources["mobilenetv2"] = (mobilenet, onnx.load(mobilenet))
    paddle = os.path.join(args.assets, PADDLE_ASSET)
    if os.path.exists(paddle):
        sources["paddleocr"] = (paddle, onnx.load(paddle))
    return sources


def default_assets():
    return os.environ.get("FETAFIX_ASSETS") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "assets"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", help="corpus folder to write")
    parser.add_argument("--assets", default=default_assets(),
                        help="the shared assets (default: $FETAFIX_ASSETS, else ../shared/assets beside the project)")
    parser.add_argument("--dequantize", help="fetafix-dequantize binary: makes the float MobileNetV2 Source")
    parser.add_argument("--mobilenetv2-source", help="or the float MobileNetV2 made already")
    parser.add_argument("--cases", default="", help="only these cases (comma-separated)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--fetafix", help="fetafix binary: check every case with fetafix compare on --images")
    parser.add_argument("--images", help="photos for the check (default <assets>/images/imagenet-samples)")
    parser.add_argument("--min-agreement", type=float, default=0.995, help="faithful ports' top-1 agreement")
    args = parser.parse_args()
    if args.list:
        for name, kind, model, opset, bugs, note in CASES:
            print(f"{name:40s} {kind:7s} opset {opset:2d}  {note}")
        return 0
    if not args.out:
        parser.error("the output folder is required")
    wanted = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(wanted) - {c[0] for c in CASES})
    if unknown:
        parser.error(f"no case named {', '.join(unknown)}")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    sources = load_sources(args)
    os.makedirs(args.out, exist_ok=True)
    index, written = [], []
    for case in CASES:
        name, kind, model = case[:3]
        if wanted and name not in wanted:
            continue
        if model not in sources:
            reason = f"Source model for {model} not found"
            print(f"{name}: skipped ({reason})")
            index.append({"name": name, "kind": kind, "skipped": reason})
            continue
        write_case(args.out, case, sources)
        index.append({"name": name, "kind": kind, "written": True})
        written.append(name)
        print(f"{name}: written")
    write_json(os.path.join(args.out, "index.json"), {"format": "fetafix-corpus", "version": 1,
                                                      "converter": CONVERTER, "cases": index,
                                                      "not_applicable": NOT_APPLICABLE})
    if args.fetafix and written:
        images = args.images or os.path.join(args.assets, "images", "imagenet-samples")
        failed = check_cases(args.out, written, args.fetafix, images, args.min_agreement)
        if failed:
            print(f"check failed: {', '.join(failed)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
