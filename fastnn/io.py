"""Model files: one ``.npz`` with the Θ(l) matrices and JSON metadata, no pickle anywhere.

Arrays in the file: ``theta_0 ... theta_{L-2}`` (Θ(1) ... Θ(L-1)), ``classes`` (numbers or
strings) and ``metadata`` (a JSON string: ``format_version``, ``layers``, ``target``
("binary", "multiclass" or "multilabel"), ``loss``, ``activation``, ``dtype``, the training
settings, and ``input_scaling``). Θ(1) acts on the raw inputs: fastnn scales nothing in
training, so ``input_scaling`` is null.

Files are written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the target, so a crash mid-save leaves the previous file intact. They are read with
``allow_pickle=False``, so loading an untrusted file cannot run code.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from fastnn.network import theta_shapes

FORMAT = "fastnn-model"
FORMAT_VERSION = 1
TRAINING_SETTINGS = (
    "hidden_layer_sizes", "alpha", "solver", "learning_rate_init", "batch_size", "max_iter",
    "tol", "early_stopping", "validation_fraction", "n_iter_no_change", "momentum",
    "nesterovs_momentum", "random_state", "backend",
)


class ModelFileError(ValueError):
    """A file that is not a readable fastnn model."""


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def save(classifier, path):
    """Write a fitted :class:`fastnn.MLPClassifier` to ``path`` atomically."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(classifier, "thetas_")
    classes = np.asarray(classifier.classes_)
    if classes.dtype.kind == "O" and all(isinstance(label, str) for label in classes):
        classes = classes.astype(str)
    if classes.dtype.kind not in "biufU":
        raise TypeError("classes_: only numeric or string class labels can be saved "
                        f"without pickle, got dtype {classifier.classes_.dtype}")
    layers = [classifier.thetas_[0].shape[1] - 1] + [t.shape[0] for t in classifier.thetas_]
    target = ("multilabel" if classifier._multilabel
              else "binary" if layers[-1] == 1 else "multiclass")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layers": layers,
        "target": target,
        "loss": classifier.loss,
        "activation": classifier.activation,
        "dtype": np.dtype(classifier.thetas_[0].dtype).name,
        "n_iter": int(classifier.n_iter_),
        "training": {name: _jsonable(getattr(classifier, name)) for name in TRAINING_SETTINGS},
        "input_scaling": None,
    }
    arrays = {f"theta_{l}": theta for l, theta in enumerate(classifier.thetas_)}
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".fastnn-", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, classes=classes, metadata=np.array(json.dumps(metadata)), **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path):
    """Read a model file written by :meth:`fastnn.MLPClassifier.save`.

    Returns
    -------
    classifier : fastnn.MLPClassifier
        Fitted, predicting exactly as the saved one did.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        A truncated, corrupted or foreign file, or an unknown format version.
    """
    from fastnn.estimator import MLPClassifier

    try:
        # The file is opened here, not by np.load, so that it is closed on every error.
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
            metadata = json.loads(str(data["metadata"][()]))
            if metadata.get("format") != FORMAT:
                raise ModelFileError(f"{path}: not a fastnn model file")
            if metadata.get("format_version") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: format_version {metadata.get('format_version')!r} is not one this "
                    f"fastnn reads ({FORMAT_VERSION}); upgrade fastnn")
            layers = metadata["layers"]
            thetas = [data[f"theta_{l}"] for l in range(len(layers) - 1)]
            classes = data["classes"]
    except FileNotFoundError:
        raise
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
            TypeError) as error:
        raise ModelFileError(f"{path}: not a readable fastnn model file ({error})") from None
    if [theta.shape for theta in thetas] != theta_shapes(layers) or any(
            theta.dtype != np.dtype(metadata["dtype"]) for theta in thetas):
        raise ModelFileError(f"{path}: weight matrices do not match layers {layers}")
    settings = {name: value for name, value in metadata["training"].items()
                if name in TRAINING_SETTINGS}
    if isinstance(settings.get("hidden_layer_sizes"), list):
        settings["hidden_layer_sizes"] = tuple(settings["hidden_layer_sizes"])
    classifier = MLPClassifier(loss=metadata["loss"], activation=metadata["activation"],
                               dtype=metadata["dtype"], **settings)
    classifier.thetas_ = [np.ascontiguousarray(theta) for theta in thetas]
    classifier.classes_ = classes
    classifier._multilabel = metadata["target"] == "multilabel"
    classifier.n_features_in_ = layers[0]
    classifier.n_iter_ = metadata.get("n_iter", 0)
    classifier.loss_curve_ = []
    return classifier
