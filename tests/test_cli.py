import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn.cli import main


def test_gradcheck_passes(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for backend in ("numpy", "numba", "numba-parallel"):
        assert backend in out
    assert "PASS" in out


def test_gradcheck_fails_when_the_bound_is_impossible(capsys):
    assert main(["gradcheck", "--tolerance", "1e-30"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_gradcheck_bad_value_is_one_line(capsys):
    assert main(["gradcheck", "--lam", "-1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "fastnn gradcheck: error: lam: expected a finite number >= 0, got -1.0"


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["gradcheck", "--m", "many"])
    assert exit_info.value.code == 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = folder / "model.npz"
    plot = folder / "plot.png"
    assert main(["train", "--quiet", "--max-iter", "40", "--out", str(model),
                 "--plot", str(plot)]) == 0
    return folder, model, plot


def test_train_defaults_to_digits(trained, capsys):
    _, model, plot = trained
    assert model.exists() and plot.stat().st_size > 10_000
    from fastnn import load

    assert load(model).thetas_[0].shape == (25, 65)


def test_train_prints_accuracy_time_and_path(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--max-iter", "5", "--data", "synthetic",
                 "--solver", "adam", "--lr", "0.01", "--hidden", "8", "8", "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "ms per iteration" in text and str(out) in text


@pytest.mark.parametrize(("output", "expected"), [("auto", "softmax"), ("sigmoid", "logistic")])
def test_train_says_which_output_it_trained(tmp_path, capsys, output, expected):
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--max-iter", "3", "--output", output, "--out",
                 str(out)]) == 0
    assert f"{expected} output" in capsys.readouterr().out
    assert fastnn.load(out).out_activation_ == expected


def test_time_per_iteration_leaves_compilation_out():
    """The first two records of a fit on an empty Numba cache come after 29 s and 7 s of
    compiling: the time per iteration reported is the typical interval, not the mean."""
    from fastnn.cli import typical_iteration

    times = [29.0, 36.0, 36.001, 36.002, 36.003, 36.004]
    assert typical_iteration(times, elapsed=36.2) == pytest.approx(0.001)
    assert typical_iteration([0.5], elapsed=0.7) == 0.7


def test_train_on_user_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    np.savetxt(tmp_path / "data.csv", np.column_stack([X, y]), delimiter=",")
    for data in ("data.npz", "data.csv"):
        assert main(["train", "--quiet", "--max-iter", "20", "--hidden", "4",
                     "--data", str(tmp_path / data), "--out", str(tmp_path / "m.npz")]) == 0


def test_predict_writes_one_label_per_line(trained, tmp_path, capsys):
    _, model, _ = trained
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "digits.npz", X=X[:50], y=y[:50])
    out = tmp_path / "labels.txt"
    assert main(["predict", str(model), str(tmp_path / "digits.npz"), "--out", str(out)]) == 0
    labels = out.read_text().splitlines()
    assert len(labels) == 50 and set(labels) <= {str(d) for d in range(10)}
    assert "accuracy" in capsys.readouterr().err
    np.savetxt(tmp_path / "digits.csv", X[:7], delimiter=",")
    assert main(["predict", str(model), str(tmp_path / "digits.csv")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7


@pytest.fixture(scope="module")
def digit_lines():
    """Five rows of digits' 64 features as CSV lines, and a header line naming them."""
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    return [",".join(f"{value:g}" for value in row) for row in X[:5]], ",".join(
        f"pixel{j}" for j in range(64))


@pytest.mark.parametrize("header", [False, True])
def test_predict_reads_a_csv_with_or_without_a_header(trained, tmp_path, capsys, digit_lines,
                                                      header):
    """A first line of column names is skipped, and the command says so; without one, every
    line is a row."""
    _, model, _ = trained
    rows, names = digit_lines
    data = tmp_path / "digits.csv"
    data.write_text("\n".join([names, *rows] if header else rows) + "\n")
    assert main(["predict", str(model), str(data)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 5
    note = f"fastnn: {data}: line 1 read as column names, not data"
    assert captured.err.splitlines() == ([note] if header else [])


@pytest.mark.parametrize(("header", "row", "edit", "message"), [
    (False, 0, lambda line: line + ",", "line 1, column 65: expected a number, got ''"),
    (True, 0, lambda line: line + ",", "line 2, column 65: expected a number, got ''"),
    (False, 3, lambda line: line.replace(",", ",x,", 1).rsplit(",", 1)[0],
     "line 4, column 2: expected a number, got 'x'"),
    (True, 3, lambda line: line.rsplit(",", 1)[0],
     "line 5: expected 64 comma-separated numbers (as on line 2), got 63"),
], ids=["stray comma on line 1", "stray comma after a header", "a word on line 4",
        "a short line 5 after a header"])
def test_predict_names_the_malformed_csv_line(trained, tmp_path, capsys, digit_lines, header,
                                              row, edit, message):
    """A malformed line, the first included, is an error naming the file and the line counted
    from 1 (a header counts), never a row dropped as if it were a header."""
    _, model, _ = trained
    rows, names = digit_lines
    rows = [edit(line) if i == row else line for i, line in enumerate(rows)]
    data = tmp_path / "digits.csv"
    data.write_text("\n".join([names, *rows] if header else rows) + "\n")
    assert main(["predict", str(model), str(data)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == f"fastnn predict: error: {data}: {message}"


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--data", "missing.npz"], "data file not found: missing.npz"),
    (["predict", "missing.npz", "x.npz"], "model file not found: missing.npz"),
])
def test_failures_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fastnn {argv[0]}: error: {message}"]


def test_predict_failures(trained, tmp_path, capsys):
    _, model, _ = trained
    np.savez(tmp_path / "narrow.npz", X=np.zeros((3, 5)))
    assert main(["predict", str(model), str(tmp_path / "narrow.npz")]) == 1
    assert "X has shape (3, 5), the model expects 64 features" in capsys.readouterr().err
    np.savez(tmp_path / "unseen.npz", X=np.zeros((3, 64)), y=np.array([1, 2, 42]))
    assert main(["predict", str(model), str(tmp_path / "unseen.npz")]) == 1
    assert "labels the model has not seen: [42]" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_text("not a model")
    assert main(["predict", str(tmp_path / "bad.npz"), str(tmp_path / "unseen.npz")]) == 1
    assert "not a readable fastnn model file" in capsys.readouterr().err


@pytest.mark.parametrize(("bad_model", "message"), [
    ("text", "not a readable fastnn model file: expected a fastnn model (.npz), got text "
             "starting 'not a model'"),
    ("nan", "array 'theta_0' (Θ(1)): expected finite weights, got nan at row 4, column 0 "
            "(1 of 1625 not finite)"),
], ids=["text", "nan"])
def test_predict_with_a_bad_model_file_is_one_line(trained, tmp_path, capsys, bad_model,
                                                   message):
    """A text file, or weights with NaN: exit 1, one line naming the file, no traceback."""
    _, model, _ = trained
    path = tmp_path / "model.npz"
    if bad_model == "text":
        path.write_text("not a model")
    else:
        with np.load(model) as data:
            arrays = dict(data)
        arrays["theta_0"][4, 0] = np.nan
        np.savez(path, **arrays)
    np.savez(tmp_path / "x.npz", X=np.zeros((3, 64)))
    assert main(["predict", str(path), str(tmp_path / "x.npz")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"fastnn predict: error: {path}: {message}"]


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["gradcheck"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: fastnn" in capsys.readouterr().out


def test_module_and_console_script_run():
    result = subprocess.run([sys.executable, "-m", "fastnn", "gradcheck"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout


def test_train_on_a_local_dask_cluster(tmp_path, capsys):
    out = tmp_path / "model.npz"
    status = main(["train", "--scheduler", "local", "--max-iter", "5", "--quiet", "--out",
                   str(out)])
    assert status == 0
    text = capsys.readouterr().out
    assert "scheduler: tcp://" in text and "workers)" in text
    assert "5 iterations" in text and out.exists()


def test_scheduler_needs_the_dask_backend(tmp_path, capsys):
    assert main(["train", "--scheduler", "local", "--backend", "numpy", "--out",
                 str(tmp_path / "m.npz")]) == 1
    assert "--backend numpy: with --scheduler the backend is dask" in capsys.readouterr().err


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    assert main(["train", "--scheduler", "tcp://127.0.0.1:9", "--quiet", "--out",
                 str(tmp_path / "m.npz")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("fastnn train: error: --scheduler: cannot connect to "
                            "tcp://127.0.0.1:9") and error.count("\n") == 1


def test_diverged_training_is_one_line(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--solver", "gd", "--lr", "1e300", "--max-iter", "20",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastnn train: error: training diverged") and "\n" not in err
    assert "lower learning_rate_init (--lr)" in err
    assert not out.exists()


def test_choice_lists_come_from_the_tables():
    from fastnn.activations import ACTIVATIONS
    from fastnn.backends import BACKENDS
    from fastnn.cli import build_parser
    from fastnn.losses import LOSSES
    from fastnn.trainer import SOLVERS

    def choices(command, option):
        parser = build_parser()
        sub = parser._subparsers._group_actions[0].choices[command]
        return next(action.choices for action in sub._actions if option in action.option_strings)

    assert list(choices("train", "--solver")) == list(SOLVERS)
    assert list(choices("train", "--backend")) == ["auto", *BACKENDS]
    assert list(choices("gradcheck", "--loss")) == list(LOSSES)
    assert list(choices("gradcheck", "--activation")) == list(ACTIVATIONS)


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory):
    """An MLPRegressor trained by the command on friedman, and its output."""
    folder = tmp_path_factory.mktemp("regression")
    model = folder / "model.npz"
    plot = folder / "plot.png"
    argv = ["train", "--quiet", "--data", "friedman", "--task", "regression", "--hidden", "50",
            "--alpha", "0.1", "--max-iter", "300", "--out", str(model), "--plot", str(plot)]
    capture = subprocess.run([sys.executable, "-m", "fastnn", *argv], capture_output=True,
                             text=True, timeout=300)
    assert capture.returncode == 0, capture.stderr
    return model, plot, capture.stdout


def test_train_regression_prints_r2_and_rmse(regression_model):
    model, plot, out = regression_model
    assert "task regression (--task)" in out
    line = next(line for line in out.splitlines() if line.startswith("train R²"))
    test_r2 = float(line.split("test R² ")[1].split(",")[0])
    assert test_r2 >= 0.85
    assert "test RMSE" in line
    assert plot.stat().st_size > 10_000
    from fastnn import MLPRegressor, load

    assert isinstance(load(model), MLPRegressor)


@pytest.mark.parametrize(("y", "task", "why"), [
    (np.linspace(0.0, 1.0, 120), "regression", "y has non-integer values"),
    (np.arange(120) % 3, "classification", "y has 3 distinct values"),
    (np.arange(120), "regression", "y has 120 distinct values (> 50)"),
    ((np.arange(120) % 2).astype(float), "classification", "y has 2 distinct values"),
])
def test_task_detected_from_the_target(tmp_path, capsys, y, task, why):
    X = np.random.default_rng(0).normal(size=(120, 3))
    np.savez(tmp_path / "data.npz", X=X, y=y)
    assert main(["train", "--quiet", "--max-iter", "5", "--hidden", "4", "--data",
                 str(tmp_path / "data.npz"), "--out", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert f"task {task} ({why})" in out
    assert ("test R²" in out) == (task == "regression")


def test_predict_writes_one_value_per_line(regression_model, tmp_path, capsys):
    model, _, _ = regression_model
    from sklearn.datasets import make_friedman1

    from fastnn import load

    X, y = make_friedman1(n_samples=40, noise=0.5, random_state=1)
    np.savez(tmp_path / "new.npz", X=X, y=y)
    out = tmp_path / "values.txt"
    assert main(["predict", str(model), str(tmp_path / "new.npz"), "--out", str(out)]) == 0
    values = np.array([float(line) for line in out.read_text().splitlines()])
    np.testing.assert_array_equal(values, load(model).predict(X))  # read back exactly
    err = capsys.readouterr().err
    assert err.startswith("R² ") and "RMSE" in err and "on 40 examples" in err


def test_predict_writes_one_row_per_line_for_several_outputs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    Y = np.column_stack([X[:, 0] + 0.5, X[:, 1] * X[:, 2]])
    np.savez(tmp_path / "data.npz", X=X, y=Y)
    model = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--max-iter", "30", "--hidden", "8", "--data",
                 str(tmp_path / "data.npz"), "--out", str(model)]) == 0
    assert "task regression (y has non-integer values)" in capsys.readouterr().out
    assert main(["predict", str(model), str(tmp_path / "data.npz")]) == 0
    captured = capsys.readouterr()
    rows = [[float(value) for value in line.split(",")] for line in captured.out.splitlines()]
    assert np.shape(rows) == (150, 2)
    np.savez(tmp_path / "one_column.npz", X=X, y=Y[:, :1])
    assert main(["predict", str(model), str(tmp_path / "one_column.npz")]) == 1
    assert "y has shape (150, 1), the model predicts shape (150, 2)" in capsys.readouterr().err
