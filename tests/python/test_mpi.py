"""`mpirun -np R fetafix compare|repair`: the same JSON (apart from timings), the same patch bytes
and the same errors as one process (docs/scaling.md). Runs when fetafix was built with MPI."""
import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest

from conftest import run_cli

PHOTOS = "/usr/share/backgrounds/mate/nature"  # Debian's mate-backgrounds, as scripts/demo.sh


def mpirun(ranks):
    launcher = os.environ.get("FETAFIX_MPIRUN", "")
    if not launcher:
        pytest.skip("fetafix was built without MPI (FETAFIX_MPIRUN is not set)")
    return [launcher, "-np", str(ranks), "--oversubscribe"]


@pytest.fixture(autouse=True)
def as_root_too(monkeypatch):
    monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
    monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    monkeypatch.setenv("OMPI_MCA_rmaps_base_oversubscribe", "1")


def without_timings(doc):
    """The document minus what depends on the clock."""
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items()
                if k not in ("seconds", "samples_per_second", "timings_seconds")}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def test_compare_on_ranks_gives_the_json_of_one_process(files):
    docs = {}
    for ranks in (1, 2, 3):
        out = files / f"compare{ranks}.json"
        r = run_cli("compare", files / "source.onnx", files / "target.onnx", "--data", files / "data",
                    "--batch-size", 4, "--json", out, "-q", mpirun=mpirun(ranks) if ranks > 1 else None)
        assert r.returncode == 1, r.stderr  # some samples disagree
        docs[ranks] = without_timings(json.loads(out.read_text()))
        if ranks > 1:
            assert r.stdout.count("Samples: 40 compared") == 1, r.stdout  # rank 0 prints, the others do not
            assert "fetafix: mpi: %d ranks" % ranks in r.stderr
    assert docs[2] == docs[1]
    assert docs[3] == docs[1]


def test_a_bad_sample_on_another_rank_is_the_same_one_line_error(files):
    np.save(files / "data" / "s013.npy", np.zeros(4, np.float64))  # held by rank 1 with batches of 4
    one = run_cli("compare", files / "source.onnx", files / "target.onnx", "--data", files / "data", "--batch-size", 4,
                  "-q")
    two = run_cli("compare", files / "source.onnx", files / "target.onnx", "--data", files / "data", "--batch-size", 4,
                  "-q", mpirun=mpirun(2))
    assert one.returncode == 2 and two.returncode == 2
    assert "s013.npy" in one.stderr
    # One line, from rank 0 only (mpirun adds its own banner about the exit code).
    assert [line for line in two.stderr.splitlines() if line.startswith("fetafix:")] == [one.stderr.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """scripts/demo.sh's pair: a small CNN and a copy with three planted faults."""
    tool = os.environ.get("FETAFIX_DEMO_MODELS", "")
    if not tool or not os.path.isdir(PHOTOS):
        pytest.skip("the demo models tool or the mate-backgrounds photos are missing")
    out = tmp_path_factory.mktemp("demo")
    subprocess.run([tool, str(out), PHOTOS], check=True, capture_output=True)
    return out


def test_repair_on_two_ranks_writes_the_bytes_of_one_process(demo):
    outputs = {}
    for ranks in (1, 2):
        d = demo / f"ranks{ranks}"
        d.mkdir()
        r = run_cli("repair", demo / "source.onnx", demo / "target.onnx", "--images", PHOTOS, "--batch-size", 4,
                    "--threads", 1, "-o", d / "repaired.onnx", "--patch", d / "patch.json", "--json", d / "repair.json",
                    "-q", mpirun=mpirun(ranks) if ranks > 1 else None)
        assert r.returncode == 0, r.stderr  # fully repaired
        outputs[ranks] = d
    one, two = outputs[1], outputs[2]
    assert (two / "patch.json").read_bytes() == (one / "patch.json").read_bytes()
    assert (two / "repaired.onnx").read_bytes() == (one / "repaired.onnx").read_bytes()
    assert without_timings(json.loads((two / "repair.json").read_text())) == \
        without_timings(json.loads((one / "repair.json").read_text()))
    assert sorted(os.listdir(two)) == ["patch.json", "repair.json", "repaired.onnx"]  # no stray temporaries
