"""fetafix.compare from Python: models as paths, bytes and ModelProtos; data as a folder or numpy
arrays; results as numpy columns and the CLI's JSON; errors, progress, the GIL."""
import json

import numpy as np
import pytest

import fetafix
from conftest import check_batch_progress, counting_rates, run_cli, two_inputs


def numpy_top1(model, x):
    w = next(t for t in model.graph.initializer if t.name == "W")
    b = next(t for t in model.graph.initializer if t.name == "b")
    from onnx import numpy_helper
    return int(np.argmax(x @ numpy_helper.to_array(w) + numpy_helper.to_array(b)))


def test_arrays_give_per_sample_columns(pair, samples):
    source, target = pair
    r = fetafix.compare(source, target, data=samples)
    assert len(r) == len(samples)
    assert r.names[:2] == ["data[0]", "data[1]"]
    assert r.agree.dtype == np.bool_ and r.distance.dtype == np.float64 and r.compared.all()
    expected_source = [numpy_top1(source, x) for x in samples]
    expected_target = [numpy_top1(target, x) for x in samples]
    assert r.source_top1.tolist() == expected_source
    assert r.target_top1.tolist() == expected_target
    assert r.agree.tolist() == [s == t for s, t in zip(expected_source, expected_target)]
    assert 0 < r.disagreeing < len(samples)  # the perturbation flips some, not all
    assert r.disagreeing == int((~r.agree).sum())
    assert r.discrepancy == pytest.approx(r.disagreeing / len(samples))
    assert r.mean_distance == pytest.approx(float(r.distance.mean()))
    assert r.summary["disagreeing"] == r.disagreeing
    assert set(r.evidence(0)) >= {"source_top_k", "target_top_k"}
    assert r.task.startswith("label")


def test_models_as_paths_bytes_and_protos_agree(files, pair, samples):
    source, target = pair
    by_proto = fetafix.compare(source, target, data=samples)
    by_bytes = fetafix.compare(source.SerializeToString(), target.SerializeToString(), data=samples)
    by_path = fetafix.compare(files / "source.onnx", str(files / "target.onnx"), data=samples)
    for r in (by_bytes, by_path):
        assert r.agree.tolist() == by_proto.agree.tolist()
        assert r.distance.tolist() == by_proto.distance.tolist()


def test_the_json_is_the_cli_json(files):
    out = files / "cli.json"
    cli = run_cli("compare", files / "source.onnx", files / "target.onnx", "--data", files / "data", "--json", out, "-q")
    assert cli.returncode == 1, cli.stderr  # some samples disagree
    py = fetafix.compare(files / "source.onnx", files / "target.onnx", data=files / "data")
    mine, theirs = json.loads(py.to_json()), json.loads(out.read_text())
    for doc in (mine, theirs):
        del doc["summary"]["seconds"], doc["summary"]["samples_per_second"]
    assert mine == theirs
    assert py.to_dict()["schema"] == "fetafix.compare/2"


def test_arrays_and_the_same_arrays_in_a_folder_agree(files, samples):
    held = fetafix.compare(files / "source.onnx", files / "target.onnx", data=iter(samples))  # any iterable
    folder = fetafix.compare(files / "source.onnx", files / "target.onnx", data=files / "data")
    assert held.agree.tolist() == folder.agree.tolist()
    assert held.distance.tolist() == folder.distance.tolist()


def test_dict_samples_constants_and_tensor_task():
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(1, 3)).astype(np.float32) for _ in range(6)]
    ys = [rng.normal(size=3).astype(np.float32) for _ in range(6)]  # a batch dim of 1 may be left out
    same = fetafix.compare(two_inputs(), two_inputs(), data=[{"x": x, "y": y} for x, y in zip(xs, ys)], task="tensor")
    assert same.disagreeing == 0 and same.distance.max() == 0
    scaled = fetafix.compare(two_inputs(), two_inputs(1.01), data=[{"x": x, "y": y} for x, y in zip(xs, ys)],
                             task="tensor")
    assert scaled.disagreeing == 6
    assert scaled.distance == pytest.approx(np.full(6, 0.01), rel=1e-3)  # ||T - S|| / ||S||
    loose = fetafix.compare(two_inputs(), two_inputs(1.01), data=[{"x": x} for x in xs], task="tensor:rtol=0.02",
                            inputs={"y": np.ones((1, 3), np.float32)})
    assert loose.disagreeing == 0
    assert loose.evidence(0)["outputs"][0]["name"] == "z"


def test_errors_carry_the_cli_message(files, pair, samples):
    source, target = pair
    with pytest.raises(fetafix.BadInputError) as e:
        fetafix.compare(source, target, data=[x.astype(np.float64) for x in samples])
    assert str(e.value) == ("data[0] is float64 [4]; input 'x' of source takes float32 [N,4] "
                            "(convert it, e.g. arr.astype(np.float32))")
    assert e.value.exit_code == 2 and isinstance(e.value, ValueError)

    cli = run_cli("compare", files / "source.onnx", files / "target.onnx", "--data", files / "nowhere")
    with pytest.raises(fetafix.Error) as e:
        fetafix.compare(files / "source.onnx", files / "target.onnx", data=files / "nowhere")
    assert cli.stderr.strip() == "fetafix: " + str(e.value)

    with pytest.raises(fetafix.BadInputError, match="not-a-task"):
        fetafix.compare(source, target, data=samples, task="not-a-task")
    with pytest.raises(fetafix.BadInputError, match="source"):
        fetafix.compare(b"not a model", target, data=samples)
    with pytest.raises(fetafix.BadInputError, match="unsupported array dtype"):
        fetafix.compare(source, target, data=[np.array(["a", "b", "c", "d"])])
    with pytest.raises(TypeError, match="iterable of samples"):
        fetafix.compare(source, target, data=5)
    with pytest.raises(TypeError, match="not one sample"):
        fetafix.compare(source, target, data=samples[0])


def test_progress_callback_sees_every_batch_and_can_stop(pair, samples):
    source, target = pair
    check_batch_progress(lambda progress: fetafix.compare(source, target, data=samples, batch_size=8,
                                                          progress=progress), len(samples))

    def boom(done, total):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        fetafix.compare(source, target, data=samples, progress=boom)


def test_the_gil_is_released_while_models_run(pair):
    # Another Python thread keeps running while the models run: between the first and the last
    # progress call (the C++ part) it counts at a good share of its rate alone, measured with
    # the same loop just before. Were the GIL held, it would run only at the few progress calls.
    source, target = pair
    rng = np.random.default_rng(3)
    many = [rng.normal(size=4).astype(np.float32) for _ in range(10000)]
    alone, during, span = counting_rates(
        lambda mark: fetafix.compare(source, target, data=many, batch_size=1000, threads=1,
                                     progress=lambda d, t: mark()))
    assert during > 0.2 * alone, (during, alone, span)

