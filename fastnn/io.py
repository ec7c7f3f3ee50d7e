"""Model files: one ``.npz`` of arrays and JSON metadata, no pickle anywhere.

This module owns the file format and nothing else: it writes arrays and metadata, and reads
them back with every field checked. The estimators turn their fitted state into that form and
back (:meth:`fastnn.MLPClassifier.save`, :meth:`fastnn.MLPRegressor.save`,
:func:`fastnn.load`).

Arrays in the file: ``theta_0 ... theta_{L-2}`` (Θ(1) ... Θ(L-1)), ``classes`` (numbers or
strings) for a classifier's targets and none for ``"continuous"`` ones (a regressor's),
optionally ``optimizer_<name>`` (the state of the mini-batch step rule, to continue training
exactly), and ``metadata``, a JSON string with the fields of :data:`FIELDS`. Θ(1) acts on the
raw inputs.

Files are written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the target, so a crash mid-save leaves the previous file intact. A new file gets
the permissions any file the user creates gets (``0666`` less the umask); an overwritten file
keeps its mode. Files are read with ``allow_pickle=False``, so loading an untrusted file cannot
run code.
"""

import json
import math
import os
import stat
import tempfile
import zipfile

import numpy as np

from fastnn.network import theta_shapes

FORMAT = "fastnn-model"
FORMAT_VERSION = 1
TARGETS = ("binary", "multiclass", "multilabel", "continuous")
"""The kinds of targets a model is trained on: a classifier's, which have ``classes``, or a
regressor's real values."""


class ModelFileError(ValueError):
    """A file that is not a readable fastnn model."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_layers(value):
    return (isinstance(value, list) and len(value) >= 2
            and all(_is_int(size) and size >= 1 for size in value))


def _is_curve(value):
    return isinstance(value, list) and all(_is_number(item) for item in value)


FIELDS = {
    # name: (required, check, what a valid value is)
    "format": (True, lambda v: v == FORMAT, f"{FORMAT!r}"),
    "format_version": (True, _is_int, "an integer"),
    "estimator": (False, lambda v: isinstance(v, str), "an estimator's name"),
    "layers": (True, _is_layers, "a list of at least 2 positive integers"),
    "target": (True, lambda v: v in TARGETS, f"one of {list(TARGETS)}"),
    "loss": (True, lambda v: isinstance(v, str), "a loss name"),
    "activation": (True, lambda v: isinstance(v, str), "an activation name"),
    "dtype": (True, lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
    "n_iter": (True, lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "training": (True, lambda v: isinstance(v, dict), "an object of training settings"),
    "loss_curve": (False, _is_curve, "a list of numbers"),
    "best_loss": (False, lambda v: v is None or _is_number(v), "a number or null"),
    "validation_scores": (False, lambda v: v is None or _is_curve(v), "a list of numbers or null"),
    "optimizer": (False, lambda v: v is None or isinstance(v, dict), "an object or null"),
    "input_scaling": (False, lambda v: v is None, "null"),
    "output_activation": (False, lambda v: isinstance(v, str), "an activation name"),
    "t": (False, lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "best_validation_score": (False, lambda v: v is None or _is_number(v), "a number or null"),
}
"""The metadata fields: whether each is required, and how it is checked on reading. Files
written before ``estimator``, ``loss_curve``, ``best_loss``, ``validation_scores`` and
``optimizer`` existed hold a classifier and read as one; those written before
``output_activation``, ``t`` and ``best_validation_score`` read with the defaults of their
time (see :mod:`fastnn.estimator._model_file`). ``input_scaling`` is no longer
written (fastnn scales no inputs); older files have it null."""


def plain(value, name):
    """``value`` as plain JSON data (None, bool, int, float, str, lists, string-keyed dicts),
    converting NumPy scalars and tuples; TypeError naming ``name`` for anything that cannot be
    stored faithfully (its ``repr`` would not give it back)."""
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{name}: {value!r} cannot be stored in a model file (JSON)")
        return value
    if isinstance(value, (tuple, list)):
        return [plain(item, f"{name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: plain(item, f"{name}[{key!r}]") for key, item in value.items()}
    raise TypeError(f"{name}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
                    "stored in a model file; set it to a plain value (for random_state: an "
                    "int seed or None) before saving")


def write_model(path, arrays, metadata):
    """Write ``arrays`` (name → ndarray) and ``metadata`` (plain JSON data) to ``path``.

    Atomic: a crash leaves the previous file, if any, intact. Raises TypeError, naming the
    field, when the metadata hold something JSON cannot store faithfully.
    """
    metadata = plain({"format": FORMAT, "format_version": FORMAT_VERSION, **metadata},
                     "metadata")
    text = json.dumps(metadata, allow_nan=False)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    mode = _mode_for(path)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".fastnn-", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, metadata=np.array(text), **arrays)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _mode_for(path):
    """The permission bits ``path`` should have: those of the file it replaces, or those of a
    new file under the current umask (mkstemp's temporary file is 0600 whatever the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # reading the umask means setting it; restored at once
        os.umask(umask)
        return 0o666 & ~umask


def read_model(path):
    """Read a model file: ``(arrays, metadata)`` with every field checked.

    ``arrays`` has ``thetas`` (a list of Θ(l), shapes matching ``layers``, dtype ``dtype``),
    ``classes`` (None for ``"continuous"`` targets) and ``optimizer`` (name → array, possibly
    empty); ``metadata`` has the fields of :data:`FIELDS`, ``estimator`` filled in for older
    files.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        A truncated, corrupted or foreign file, an unknown format version, a field missing
        or of the wrong type, or a Θ(l) with NaN or infinite weights.
    """
    try:
        # The file is opened here, not by np.load, so that it is closed on every error.
        with open(path, "rb") as file:
            _check_archive(file, path)
            with np.load(file, allow_pickle=False) as data:
                metadata = json.loads(str(data["metadata"][()]))
                _check_metadata(metadata, path)
                layers = metadata["layers"]
                arrays = {
                    "thetas": [data[f"theta_{l}"] for l in range(len(layers) - 1)],
                    "classes": data["classes"] if "classes" in data.files else None,
                    "optimizer": {name[len("optimizer_"):]: data[name] for name in data.files
                                  if name.startswith("optimizer_")},
                }
    except (FileNotFoundError, ModelFileError):
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError, TypeError) as error:
        # NumPy's words for an object array advise allow_pickle; fastnn never loads pickles.
        reason = ("it holds pickled Python objects, which fastnn does not load"
                  if "pickle" in str(error) else error)
        raise ModelFileError(f"{path}: not a readable fastnn model file ({reason})") from None
    thetas = arrays["thetas"]
    if [theta.shape for theta in thetas] != theta_shapes(layers) or any(
            theta.dtype != np.dtype(metadata["dtype"]) for theta in thetas):
        raise ModelFileError(f"{path}: weight matrices do not match layers {layers} and dtype "
                             f"{metadata['dtype']}")
    for l, theta in enumerate(thetas):
        bad = np.argwhere(~np.isfinite(theta))
        if bad.size:
            j, i = bad[0]
            raise ModelFileError(
                f"{path}: array 'theta_{l}' (Θ({l + 1})): expected finite weights, got "
                f"{theta[j, i]} at row {j}, column {i} ({len(bad)} of {theta.size} not finite)")
    _check_classes(arrays["classes"], metadata["target"], path)
    metadata.setdefault("estimator", "MLPClassifier")
    return arrays, metadata


def _check_archive(file, path):
    """ModelFileError unless ``file`` starts as a zip archive (a ``.npz``) does: np.load takes
    anything else for a pickle, and its message advises loading that unsafely."""
    head = file.read(64)
    file.seek(0)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip's first entry, or an empty zip
        return
    if not head:
        found = "an empty file"
    elif head.startswith(b"\x93NUMPY"):
        found = "a single .npy array"
    else:
        try:
            found = f"text starting {head.decode('utf-8')[:40]!r}"
        except UnicodeDecodeError:
            found = f"binary data starting {head[:16]!r}"
    raise ModelFileError(f"{path}: not a readable fastnn model file: expected a fastnn model "
                         f"(.npz), got {found}")


def _check_classes(classes, target, path):
    """A classifier's file has a 1-D array ``classes``; a regressor's (``"continuous"``
    targets) has none."""
    if target == "continuous":
        if classes is not None:
            raise ModelFileError(f"{path}: array 'classes': a model of continuous targets has "
                                 f"none, got one of shape {classes.shape}")
    elif classes is None:
        raise ModelFileError(f"{path}: lacks the array 'classes' a model of {target} targets "
                             "has")
    elif classes.ndim != 1 or classes.dtype.kind not in "biufU":
        raise ModelFileError(f"{path}: array 'classes': expected a 1-D array of numbers or "
                             f"strings, got dtype {classes.dtype} and shape {classes.shape}")


def _check_metadata(metadata, path):
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a fastnn model file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format_version {metadata.get('format_version')!r} is not one this fastnn "
            f"reads ({FORMAT_VERSION}); upgrade fastnn")
    for name, (required, check, expected) in FIELDS.items():
        if name not in metadata:
            if required:
                raise ModelFileError(f"{path}: metadata lacks the field {name!r}")
            continue
        if not check(metadata[name]):
            raise ModelFileError(f"{path}: metadata field {name!r}: expected {expected}, got "
                                 f"{metadata[name]!r}"[:300])
