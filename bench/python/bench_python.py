"""fetafix.compare on numpy arrays vs `fetafix compare` on the same arrays saved as .npy files
(docs/python.md). MobileNetV2 (float, from the assets' int8 model) against its fp16-rounded copy;
N seeded random uint8 [224,224,3] samples (already "preprocessed": the model takes uint8 NHWC).
Runs each side R times, alternated, and prints the best and median seconds and their ratio.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py [N=200] [R=3] [BUILD=build]
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
assets = os.environ.get("FETAFIX_ASSETS", os.path.join(root, "..", "shared", "assets"))
qdq = os.path.join(assets, "models", "mobilenet_v2_1.0_224_int8_per_tensor.onnx")
if not os.path.exists(qdq):
    print(f"bench_python: skipped: {qdq} not found (set FETAFIX_ASSETS)")
    sys.exit(0)
cli = os.path.join(build, "src", "cli", "fetafix")

with tempfile.TemporaryDirectory() as work:
    source, target, data = (os.path.join(work, x) for x in ("source.onnx", "target.onnx", "data"))
    subprocess.run([os.path.join(build, "tools", "fetafix-dequantize"), qdq, source], check=True, capture_output=True)
    subprocess.run([cli, "inject", source, "--fault", "wb:fp16", "-o", target], check=True, capture_output=True)
    rng = np.random.default_rng(0)
    samples = [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(n)]
    os.mkdir(data)
    for i, x in enumerate(samples):
        np.save(os.path.join(data, f"s{i:05d}.npy"), x)

    def run_cli():
        subprocess.run([cli, "compare", source, target, "--data", data, "-q"], capture_output=True)

    def run_python():
        fetafix.compare(source, target, data=samples)

    times = {"cli": [], "python": []}
    for _ in range(repeats):
        for name, f in (("cli", run_cli), ("python", run_python)):
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    print(f"bench_python: {n} samples, {repeats} runs each, {os.cpu_count()} cores")
    for name, ts in times.items():
        print(f"  {name:6s}: best {min(ts):6.2f} s  median {statistics.median(ts):6.2f} s")
    print(f"  python / cli: best {min(times['python']) / min(times['cli']):.3f}, "
          f"median {statistics.median(times['python']) / statistics.median(times['cli']):.3f}")
