"""Small ONNX models built here with onnx.helper, and the paths ctest passes in."""
import os
import subprocess
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def classifier(weights, bias, name="clf"):
    """x [N,4] float32 -> logits [N,3]: one MatMul and an Add."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["logits"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def two_inputs(scale=1.0):
    """x [N,3] and y [N,3] float32 -> z = (x + y) * scale."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["s"]), helper.make_node("Mul", ["s", "k"], ["z"])],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.array([scale], dtype=np.float32), "k")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="session")
def weights():
    rng = np.random.default_rng(7)
    return rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)


@pytest.fixture(scope="session")
def pair(weights):
    """(source, target) ModelProtos: the Target's weights are perturbed, so some samples flip."""
    w, b = weights
    rng = np.random.default_rng(8)
    return classifier(w, b, "source"), classifier(w + rng.normal(scale=0.6, size=w.shape), b, "target")


@pytest.fixture(scope="session")
def samples():
    rng = np.random.default_rng(9)
    return [rng.normal(size=4).astype(np.float32) for _ in range(40)]


@pytest.fixture
def files(tmp_path, pair, samples):
    """The pair saved as .onnx and the samples as a folder of .npy files."""
    source, target = pair
    onnx.save(source, tmp_path / "source.onnx")
    onnx.save(target, tmp_path / "target.onnx")
    data = tmp_path / "data"
    data.mkdir()
    for i, x in enumerate(samples):
        np.save(data / f"s{i:03d}.npy", x)
    return tmp_path


def fetafix_bin():
    path = os.environ.get("FETAFIX_BIN", "")
    if not path or not os.path.exists(path):
        pytest.skip("FETAFIX_BIN is not set (run through ctest)")
    return path


def run_cli(*args, mpirun=None):
    command = [*mpirun, fetafix_bin(), *map(str, args)] if mpirun else [fetafix_bin(), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True)


def check_batch_progress(run, count, batch=8):
    """run(progress=...) calls progress(done, total) after every batch and stops with
    fetafix.Stopped when it returns False."""
    import fetafix
    calls = []
    run(progress=lambda done, total: calls.append((done, total)))
    assert calls == [(batch * (i + 1), count) for i in range(count // batch)]
    with pytest.raises(fetafix.Stopped):
        run(progress=lambda done, total: done < 2 * batch)


def counting_rates(run):
    """How fast another Python thread counts alone, and while `run(mark)` runs in a thread.

    `run` calls mark() from its callbacks; the rate "during" is the count between the first and
    the last mark (the C++ part). Were the GIL held there, the counter would advance only while a
    callback runs. Returns (alone_rate, during_rate, seconds between the marks)."""
    count, marks = [0], []

    def spin(stop):
        while not stop.is_set():
            count[0] += 1

    alone = threading.Event()
    threading.Timer(0.2, alone.set).start()
    start = time.perf_counter()
    spin(alone)
    alone_rate = count[0] / (time.perf_counter() - start)

    done = threading.Event()

    def worker_body():
        run(lambda: marks.append((time.perf_counter(), count[0])))
        done.set()

    count[0] = 0
    worker = threading.Thread(target=worker_body)
    worker.start()
    spin(done)
    worker.join()
    (t0, c0), (t1, c1) = marks[0], marks[-1]
    assert t1 > t0, marks
    return alone_rate, (c1 - c0) / (t1 - t0), t1 - t0
