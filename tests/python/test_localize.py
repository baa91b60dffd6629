"""fetafix.localize from Python: findings as dataclasses, the CLI's JSON, arrays and folders
alike, errors with the CLI's message, progress."""
import dataclasses
import json

import numpy as np
import pytest

import fetafix
from conftest import check_batch_progress, run_cli


def test_arrays_find_the_perturbed_weights(pair, samples):
    source, target = pair
    r = fetafix.localize(source, target, data=samples)
    assert r.disagreeing > 0 and r.disagreeing == r.detection.disagreeing
    assert r.detection.names[0] == "data[0]"
    assert not r.nothing_to_repair and r.fault_count == len(r.faults) > 0
    assert all(isinstance(f, fetafix.Finding) and dataclasses.is_dataclass(f) for f in r.findings)
    wb = [f for f in r.faults if f.type == "WB"]
    assert len(wb) == 1, r.report()
    assert wb[0].is_fault and wb[0].verdict == "fault" and wb[0].evidence
    assert [f.id for f in r.findings] == [f["id"] for f in r.to_dict()["findings"]]
    assert "WB" in r.report()


def test_the_same_model_has_nothing_to_repair(pair, samples):
    source, _ = pair
    r = fetafix.localize(source, source, data=samples)
    assert r.disagreeing == 0 and r.nothing_to_repair and r.faults == []


def test_the_json_is_the_cli_json_and_arrays_find_what_the_folder_does(files, samples):
    out = files / "cli.json"
    cli = run_cli("localize", files / "source.onnx", files / "target.onnx", "--data", files / "data", "--json", out,
                  "-q")
    assert cli.returncode == 1, cli.stderr  # faults found
    by_folder = fetafix.localize(files / "source.onnx", files / "target.onnx", data=files / "data")
    mine, theirs = json.loads(by_folder.to_json()), json.loads(out.read_text())
    for doc in (mine, theirs):
        del doc["timings_seconds"]
    assert mine == theirs
    assert by_folder.to_json().endswith("\n")  # as the file: json_text's layout

    by_arrays = fetafix.localize(files / "source.onnx", files / "target.onnx", data=samples)
    assert [f.id for f in by_arrays.findings] == [f.id for f in by_folder.findings]
    assert [f.summary for f in by_arrays.findings] == [f.summary for f in by_folder.findings]


def test_options_errors_and_progress(files, pair, samples):
    source, target = pair
    with pytest.raises(fetafix.BadInputError, match="aggregation 'median': expected borda, mean or max"):
        fetafix.localize(source, target, data=samples, aggregation="median")
    with pytest.raises(fetafix.BadInputError, match=r"similar: 1 is not in \[2, 100000\]"):
        fetafix.localize(source, target, data=samples, similar=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'simlar'"):
        fetafix.localize(source, target, data=samples, simlar=10)
    with pytest.raises(TypeError, match="seed"):
        fetafix.localize(source, target, data=samples, seed="one")

    cli = run_cli("localize", files / "source.onnx", files / "target.onnx", "--data", files / "nowhere")
    with pytest.raises(fetafix.Error) as e:
        fetafix.localize(files / "source.onnx", files / "target.onnx", data=files / "nowhere")
    assert cli.stderr.strip() == "fetafix: " + str(e.value) and e.value.exit_code == cli.returncode == 2

    check_batch_progress(lambda progress: fetafix.localize(source, target, data=samples, batch_size=8,
                                                           progress=progress), len(samples))


def test_options_reach_the_analysis(pair, samples):
    source, target = pair
    # Matching only Conv layers leaves the MatMul unmatched: no layer finding.
    r = fetafix.localize(source, target, data=samples, core_ops=["Conv"])
    assert not [f for f in r.findings if f.type == "WB"]
    assert r.unexplained_disagreement
    # A WB tolerance wider than the perturbation hides it.
    loose = fetafix.localize(source, target, data=samples, weight_atol=100.0)
    assert not [f for f in loose.findings if f.type == "WB"]
