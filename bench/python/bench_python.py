"""fetafix.compare (or fetafix.repair) on numpy arrays vs `fetafix compare` (`fetafix repair`) on
the same arrays saved as .npy files (docs/python.md). MobileNetV2 (float, from the assets' int8
model) against its fp16-rounded copy; N seeded random uint8 [224,224,3] samples for compare,
the first N ImageNet photos of the assets resized to them for repair (already "preprocessed": the
model takes uint8 NHWC). Runs each side R times, alternated, and prints the
best and median seconds and their ratio; repair also checks that both wrote the same patch and
model bytes.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py [N=200] [R=3] [BUILD=build] \
        [compare|repair] [FAULT=wb:fp16]

(fp16 rounding flips no label of random inputs, so there is nothing to repair: the repair
benchmark plants lh:dilations=2: 32 of the first 100 photos disagree.)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fetafix

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
build = sys.argv[3] if len(sys.argv) > 3 else os.path.join(root, "build")
command = sys.argv[4] if len(sys.argv) > 4 else "compare"
fault = sys.argv[5] if len(sys.argv) > 5 else "wb:fp16"  # the fault planted in the Target
assets = os.environ.get("FETAFIX_ASSETS", os.path.join(root, "..", "shared", "assets"))
qdq = os.path.join(assets, "models", "mobilenet_v2_1.0_224_int8_per_tensor.onnx")
if not os.path.exists(qdq):
    print(f"bench_python: skipped: {qdq} not found (set FETAFIX_ASSETS)")
    sys.exit(0)
cli = os.path.join(build, "src", "cli", "fetafix")



def random_samples(count):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(count)]


def photos(count):
    """The first `count` ImageNet photos of the assets (sorted), stretched to 224x224 RGB uint8 by
    ImageMagick: random inputs get one label from any model, so a fault flips none of them."""
    folder = os.path.join(assets, "images", "imagenet-samples")
    names = sorted(os.listdir(folder))[:count]
    return [np.frombuffer(subprocess.run(["convert", os.path.join(folder, name), "-resize", "224x224!", "-depth", "8",
                                          "rgb:-"], check=True, capture_output=True).stdout,
                          dtype=np.uint8).reshape(224, 224, 3) for name in names]


with tempfile.TemporaryDirectory() as work:
    source, target, data = (os.path.join(work, x) for x in ("source.onnx", "target.onnx", "data"))
    subprocess.run([os.path.join(build, "tools", "fetafix-dequantize"), qdq, source], check=True, capture_output=True)
    subprocess.run([cli, "inject", source, "--fault", fault, "-o", target], check=True, capture_output=True)
    samples = photos(n) if command == "repair" else random_samples(n)
    os.mkdir(data)
    for i, x in enumerate(samples):
        np.save(os.path.join(data, f"s{i:05d}.npy"), x)

    out, patch = os.path.join(work, "out.onnx"), os.path.join(work, "patch.json")
    results = {}

    def run_cli():
        extra = ["-o", out, "--patch", patch] if command == "repair" else []
        subprocess.run([cli, command, source, target, "--data", data, "-q", *extra], capture_output=True)

    def run_python():
        results["python"] = getattr(fetafix, command)(source, target, data=samples)

    times = {"cli": [], "python": []}
    for _ in range(repeats):
        for name, f in (("cli", run_cli), ("python", run_python)):
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    print(f"bench_python {command} ({fault}): {n} samples, {repeats} runs each, {os.cpu_count()} cores")
    for name, ts in times.items():
        print(f"  {name:6s}: best {min(ts):6.2f} s  median {statistics.median(ts):6.2f} s")
    if command == "repair":
        r = results["python"]
        with open(patch) as f, open(out, "rb") as m:
            same = (r.patch_json() == f.read(), r.model_bytes == m.read())
        print(f"  repair: {r.initial_disagreeing} -> {r.final_disagreeing} of {r.samples} disagree, "
              f"{sum(s.kept for s in r.steps)} step(s) kept; same patch bytes: {same[0]}, same model bytes: {same[1]}")
    print(f"  python / cli: best {min(times['python']) / min(times['cli']):.3f}, "
          f"median {statistics.median(times['python']) / statistics.median(times['cli']):.3f}")
