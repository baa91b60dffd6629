"""fetafix.repair from Python: the repaired model, the patch and the JSON log as the CLI writes
them, on numpy arrays as on a folder; steps as dataclasses; progress, log, validation, errors."""
import dataclasses
import json

import numpy as np
import onnx
import pytest

import fetafix
from conftest import counting_rates, run_cli


def comparable(log):
    """The repair log without what differs from run to run (timings)."""
    del log["timings_seconds"]
    for step in log["steps"]:
        del step["seconds"]
    return log


def test_arrays_repair_the_perturbed_weights(pair, samples):
    source, target = pair
    r = fetafix.repair(source, target, data=samples)
    assert r.outcome == "repaired" and r.final_disagreeing == 0 < r.initial_disagreeing
    assert r.samples == len(samples)
    assert all(isinstance(s, fetafix.RepairStep) and dataclasses.is_dataclass(s) for s in r.steps)
    kept = [s for s in r.steps if s.kept]
    assert [s.type for s in kept] == ["WB"], r.report()
    assert kept[0].disagreeing_before == r.initial_disagreeing and kept[0].disagreeing_after == 0
    assert isinstance(r.model, onnx.ModelProto)  # a ModelProto in, a ModelProto out
    assert fetafix.compare(source, r.model, data=samples).disagreeing == 0
    assert fetafix.apply(r.patch, target).SerializeToString() == r.model_bytes
    assert fetafix.apply(r.patch_json(), target.SerializeToString()) == r.model_bytes
    assert r.to_dict()["schema"] == "fetafix.repair/1" and "repaired" in repr(r)


def test_numpy_gives_the_cli_patch_model_and_log(files, samples):
    cli = run_cli("repair", files / "source.onnx", files / "target.onnx", "--data", files / "data", "-o",
                  files / "out.onnx", "--patch", files / "patch.json", "--json", files / "log.json", "-q")
    assert cli.returncode == 0, cli.stderr
    by_arrays = fetafix.repair(files / "source.onnx", files / "target.onnx", data=samples)
    assert by_arrays.patch_json() == (files / "patch.json").read_text()
    assert by_arrays.model_bytes == (files / "out.onnx").read_bytes()
    assert isinstance(by_arrays.model, bytes)  # a path in, bytes out

    by_folder = fetafix.repair(files / "source.onnx", files / "target.onnx", data=files / "data")
    theirs = comparable(json.loads((files / "log.json").read_text()))
    assert comparable(json.loads(by_folder.to_json())) == theirs
    mine = comparable(by_arrays.to_dict())
    assert [p["file"] for p in mine.pop("per_image")] == [f"data[{i}]" for i in range(len(samples))]
    theirs.pop("per_image")
    assert mine == theirs


def test_progress_sees_each_step_and_can_stop(pair, samples):
    source, target = pair
    steps, lines = [], []
    r = fetafix.repair(source, target, data=samples, progress=steps.append, log=lines.append)
    assert steps == r.steps
    assert any("initial disagreement" in line for line in lines)

    with pytest.raises(fetafix.Stopped, match=r"stopped by the progress callback after \d+ steps"):
        fetafix.repair(source, target, data=samples, progress=lambda step: False)

    def boom(step):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        fetafix.repair(source, target, data=samples, progress=boom)


def test_validation_options_and_errors(files, pair, samples):
    source, target = pair
    rng = np.random.default_rng(11)
    held_out = [rng.normal(size=4).astype(np.float32) for _ in range(12)]
    r = fetafix.repair(source, target, data=samples, validate=held_out, max_rounds=1, strict_regressions=True)
    assert r.validation["images"] == 12 and r.validation["final_disagreeing"] == 0

    with pytest.raises(fetafix.BadInputError, match=r"max_rounds: 0 is not in \[1, 100\]"):
        fetafix.repair(source, target, data=samples, max_rounds=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'rounds'"):
        fetafix.repair(source, target, data=samples, rounds=2)
    cli = run_cli("repair", files / "source.onnx", files / "missing.onnx", "--data", files / "data", "-o",
                  files / "out.onnx")
    with pytest.raises(fetafix.BadInputError) as e:
        fetafix.repair(files / "source.onnx", files / "missing.onnx", data=samples)
    assert cli.stderr.strip() == "fetafix: " + str(e.value)


def test_the_gil_is_released_while_the_repair_runs(pair):
    # As compare's test: another Python thread keeps counting at a good share of its rate alone
    # between the repair's first and last log line (the C++ part).
    source, target = pair
    rng = np.random.default_rng(4)
    many = [rng.normal(size=4).astype(np.float32) for _ in range(4000)]
    alone, during, span = counting_rates(
        lambda mark: fetafix.repair(source, target, data=many, threads=1, log=lambda line: mark()))
    assert during > 0.2 * alone, (during, alone, span)

