import pytest

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
