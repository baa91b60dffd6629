"""fetafix.apply from Python: the same bytes as `fetafix apply`, for every kind of argument."""
import base64
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import fetafix
from conftest import classifier, run_cli


@pytest.fixture
def patch(weights):
    """A patch that puts the Source's W back into the Target."""
    w, _ = weights
    return {"schema": "fetafix.patch/1", "preprocess": None,
            "edits": [{"kind": "set_weight", "value": "W",
                       "tensor": {"dtype": "float32", "dims": list(w.shape),
                                  "raw_base64": base64.b64encode(w.astype("<f4").tobytes()).decode()}}]}


def test_apply_gives_the_cli_bytes(tmp_path, pair, weights, patch):
    _, target = pair
    onnx.save(target, tmp_path / "target.onnx")
    (tmp_path / "patch.json").write_text(json.dumps(patch))
    cli = run_cli("apply", tmp_path / "patch.json", tmp_path / "target.onnx", "-o", tmp_path / "out.onnx")
    assert cli.returncode == 0, cli.stderr
    expected = (tmp_path / "out.onnx").read_bytes()
    for p in (tmp_path / "patch.json", str(tmp_path / "patch.json"), patch, json.dumps(patch), json.dumps(patch).encode()):
        assert fetafix.apply(p, tmp_path / "target.onnx") == expected
    assert fetafix.apply(patch, target.SerializeToString()) == expected
    repaired = fetafix.apply(patch, target)  # a ModelProto in, a ModelProto out
    assert isinstance(repaired, onnx.ModelProto)
    w = next(t for t in repaired.graph.initializer if t.name == "W")
    assert np.array_equal(numpy_helper.to_array(w), weights[0])


def test_bad_patches_raise_with_the_cli_message(tmp_path, pair, patch):
    _, target = pair
    with pytest.raises(fetafix.BadInputError, match="edits"):
        fetafix.apply({"schema": "fetafix.patch/1", "edits": 3}, target)
    patch["edits"][0]["value"] = "no_such_tensor"
    with pytest.raises(fetafix.BadInputError, match="does not apply"):
        fetafix.apply(patch, target)
    with pytest.raises(fetafix.BadInputError, match="not valid JSON"):
        fetafix.apply(b"{nope", target)
    with pytest.raises(fetafix.BadInputError):
        fetafix.apply(tmp_path / "missing.json", target)
