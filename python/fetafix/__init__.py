"""fetafix: find and repair the faults a converter introduces when a model moves between
frameworks (docs/python.md).

    import fetafix
    result = fetafix.compare("model.onnx", converted_proto, data=[x0, x1, x2], task="tensor")
    result.agree            # numpy bool array, one per sample
    result.to_json()        # the JSON `fetafix compare --json` writes

    repaired = fetafix.apply("patch.json", "converted.onnx")   # the repaired model's bytes

Models are paths, bytes, or objects with SerializeToString() (an onnx.ModelProto). Data is a
folder of samples (images, .npz, .npy, .wav: docs/tasks.md) or an iterable of samples already
preprocessed by your own pipeline: numpy arrays (for a model with one input) or dicts of arrays
named after the inputs. Errors are fetafix.Error exceptions carrying the CLI's one-line message.
"""

import os
from collections.abc import Mapping

import numpy as np

from . import _fetafix
from ._errors import BadInputError, Error, InternalError, Stopped
from ._results import Finding, RepairStep

__all__ = ["compare", "localize", "repair", "apply", "CompareResult", "LocalizeResult", "RepairResult", "Finding",
           "RepairStep", "Error", "BadInputError", "InternalError", "Stopped"]
__version__ = _fetafix.__version__

CompareResult = _fetafix.CompareResult
LocalizeResult = _fetafix.LocalizeResult


def _model(model, what):
    """(payload, label): a path as str, or serialized bytes."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        return path, path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), what
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return serialize(), what
    raise TypeError(f"{what}: a path, bytes or an object with SerializeToString() (onnx.ModelProto), "
                    f"not {type(model).__name__}")


def _sample(item):
    if isinstance(item, Mapping):
        return {str(name): np.asarray(value) for name, value in item.items()}
    return np.asarray(item)


def _data(data):
    """A folder path as str, or a list of numpy arrays / dicts of arrays."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if isinstance(data, (np.ndarray, Mapping)):
        raise TypeError("data: give an iterable of samples (a list of arrays, or of dicts of arrays), not one sample; "
                        "for one sample write [x]")
    try:
        items = iter(data)
    except TypeError:
        raise TypeError(f"data: a folder path or an iterable of samples, not {type(data).__name__}") from None
    return [_sample(item) for item in items]


def _preprocess(spec, what):
    if isinstance(spec, (str, os.PathLike)):
        return os.fspath(spec)
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"{what}: a preset name, a JSON preset file or a dict, not {type(spec).__name__}")


def compare(source, target, data, *, task=None, top_k=5, label_offset=None, threads=0, batch_size=8, strict=False,
            source_preprocess="auto", target_preprocess="auto", inputs=None, sample_rate=0, images_only=False,
            progress=None):
    """Runs Source and Target on every sample and compares their outputs sample by sample.

    task: "label", "boxes", "mask", "text" or "tensor", with options as on the command line
        ("tensor:rtol=1e-2", "mask:threshold=0.3"); None: label, when each model has one
        [batch, classes] output (docs/tasks.md).
    top_k, label_offset, threads, batch_size, strict, sample_rate: as the CLI's --top-k, ...
    source_preprocess, target_preprocess: for image samples: a preset name ("torch", "tf",
        "caffe", "raw", "uint8", "auto"), a JSON preset file, or a dict of preset keys
        ({"base": "torch", "width": 299}).
    inputs: {name: array}: the same value for that input on every sample (an RNN's state).
    images_only: with a folder, only its images are samples.
    progress: called as progress(done, total) after each batch; return False to stop
        (fetafix.Stopped is raised). Ctrl-C stops the run too.

    Returns a CompareResult. The run releases the GIL.
    """
    args = _pair_args(source, target, data, progress, dict(
        task=task or "", top_k=int(top_k), label_offset=None if label_offset is None else int(label_offset),
        threads=int(threads), batch_size=int(batch_size), strict=bool(strict), source_preprocess=source_preprocess,
        target_preprocess=target_preprocess, inputs=inputs, sample_rate=int(sample_rate),
        images_only=bool(images_only)))
    return _fetafix.compare(args)


def _pair_args(source, target, data, progress, options):
    """The keywords the C++ side reads (python/src/pair_input.h): models as path or bytes, data as
    a folder or a list, presets and constant inputs normalised; other options as given."""
    s, s_label = _model(source, "source")
    t, t_label = _model(target, "target")
    if progress is not None and not callable(progress):
        raise TypeError("progress: a callable, or None")
    args = dict(options, source=s, target=t, source_label=s_label, target_label=t_label, data=_data(data),
                progress=progress)
    for side in ("source_preprocess", "target_preprocess"):
        if args.get(side) is not None:
            args[side] = _preprocess(args[side], side)
    if args.get("inputs") is not None:
        args["inputs"] = {str(k): np.asarray(v) for k, v in args["inputs"].items()}
    return args


def localize(source, target, data, *, task=None, progress=None, **options):
    """Localizes the faults a conversion introduced: compare on the samples, then the input checks
    (PP, ID, TSS), layer matching, the layer checks (WB, LH, CG), the equivalence filter and the
    layer rankings, as `fetafix localize` (docs/localize-json.md).

    source, target, data, task: as for compare().
    progress: called as progress(done, total) after each batch of the detection run over the
        samples (as compare's); return False to stop (fetafix.Stopped). Ctrl-C stops that run too.
    options: compare's keywords (top_k, label_offset, threads, batch_size, strict,
        source_preprocess, target_preprocess, inputs, sample_rate, images_only) and the CLI's
        analysis flags without their dashes: similar, dissimilar, repeats, seed, alpha,
        aggregation ("borda", "mean", "max"), core_ops (a list of op types), weight_atol,
        weight_rtol, equivalence_rtol, equivalence_atol, replay_images, replay_tolerance,
        probe_images. Defaults are the CLI's.

    Returns a LocalizeResult: .findings (fetafix.Finding dataclasses; faults first), .faults,
    .detection (a CompareResult), .to_json() (the CLI's --json file). The run releases the GIL.
    """
    return _fetafix.localize(_pair_args(source, target, data, progress, dict(options, task=task or "")))


def repair(source, target, data, *, task=None, progress=None, log=None, validate=None, cleanup=True, **options):
    """Localizes the faults of Target and repairs it greedily, keeping an edit only when fewer
    samples disagree, as `fetafix repair` (docs/repair.md).

    source, target, data, task: as for compare(); options: localize()'s, and the CLI's repair
        flags without dashes: time_limit (seconds), max_rejections, max_rounds, allow_equal,
        strict_regressions, joint (False: --no-joint).
    progress: called as progress(step) with each fetafix.RepairStep once it is decided; return
        False to stop (fetafix.Stopped). Ctrl-C stops the run between steps.
    log: called as log(line) with the progress lines `fetafix repair` prints on stderr.
    validate: independent samples (a folder or arrays, as data): disagreement before and after.
    cleanup: drop what the repaired model no longer uses (False: --no-cleanup).

    Returns a RepairResult: .model (the repaired Target, byte for byte what `fetafix repair -o`
    writes: bytes, or a ModelProto when the Target was one), .model_bytes, .patch (a dict) and
    .patch_json() (the text --patch writes; fetafix.apply replays it), .steps, .outcome,
    .to_json() (the CLI's --json log). The run releases the GIL.
    """
    if log is not None and not callable(log):
        raise TypeError("log: a callable log(line), or None")
    args = _pair_args(source, target, data, progress, dict(options, task=task or "", log=log, cleanup=bool(cleanup)))
    if validate is not None:
        args["validate"] = _data(validate)
    result = _fetafix.repair(args)
    return RepairResult(result, target)


class RepairResult:
    """What fetafix.repair returns; every attribute but .model is the C++ result's."""

    def __init__(self, result, target):
        self._result = result
        self._proto_class = type(target) if hasattr(target, "SerializeToString") and hasattr(
            type(target), "FromString") else None

    @property
    def model(self):
        """The repaired Target: a ModelProto when the Target was given as one, else bytes."""
        data = self._result.model_bytes
        return self._proto_class.FromString(data) if self._proto_class else data

    def __getattr__(self, name):
        return getattr(self._result, name)

    def __repr__(self):
        r = self._result
        return (f"<fetafix.RepairResult {r.outcome}: {r.initial_disagreeing} -> {r.final_disagreeing} of "
                f"{r.samples} samples disagree, {sum(s.kept for s in r.steps)} step(s) kept>")


def apply(patch, target, *, cleanup=True):
    """Replays a repair patch (`fetafix repair --patch`) on the Target it was made for.

    patch: a path, the patch's JSON text (str starting with "{" or bytes), or the patch as a dict.
    target: a path, bytes or an onnx.ModelProto.
    cleanup: drop what the patched model no longer uses, as `fetafix apply` does (False for a
        repair run with --no-cleanup).

    Returns the repaired model as the same kind the Target was given: an object of the same
    class for a ModelProto, bytes otherwise — byte for byte the model `fetafix repair` wrote.
    """
    if isinstance(patch, Mapping):
        import json
        patch_payload, patch_label = json.dumps(patch).encode(), "patch"
    elif isinstance(patch, (bytes, bytearray)):
        patch_payload, patch_label = bytes(patch), "patch"
    elif isinstance(patch, str) and patch.lstrip().startswith("{"):
        patch_payload, patch_label = patch.encode(), "patch"
    elif isinstance(patch, (str, os.PathLike)):
        patch_payload = patch_label = os.fspath(patch)
    else:
        raise TypeError(f"patch: a path, JSON text or a dict, not {type(patch).__name__}")
    t, t_label = _model(target, "target")
    repaired = _fetafix.apply(patch=patch_payload, patch_label=patch_label, target=t, target_label=t_label,
                              cleanup=bool(cleanup))
    if hasattr(target, "SerializeToString") and hasattr(type(target), "FromString"):
        return type(target).FromString(repaired)
    return repaired
