"""The ``bilinrec lrs fit|forget`` command line on small files made in the test."""

import json

import numpy as np
import pandas as pd
import pytest

from bilinrec.cli import main
from bilinrec.models.lrs import AMHTLRS
from bilinrec.models.lrs.synthetic import make_problem

PROBLEM = make_problem(n_users=20, dim=6, rank=2, sparsity=1, samples=30, noise=0.05, seed=2)
FIT = ["--rank", "2", "--sparsity", "1", "--tol", "0", "--max-rounds", "200"]


@pytest.fixture()
def samples(tmp_path):
    frame = pd.DataFrame(PROBLEM.X, columns=[f"x{i}" for i in range(PROBLEM.dim)])
    frame.insert(0, "y", PROBLEM.y)
    frame.insert(0, "user", PROBLEM.users)
    path = tmp_path / "samples.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def fitted(tmp_path, samples):
    path = tmp_path / "model.npz"
    assert main(["lrs", "fit", "--data", str(samples), "--out", str(path), *FIT]) == 0
    return path


def test_fit_then_forget_round_trip(tmp_path, samples, fitted, capsys):
    model = AMHTLRS.load(fitted)
    assert model.n_users_ == 20 and model.U_.shape == (6, 2)
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"row": [0, 1, 40]}).to_csv(rows, index=False)
    out = tmp_path / "forgotten.npz"
    assert main(["lrs", "forget", "--model", str(fitted), "--data", str(samples), "--users", "3,4",
                 "--users", "9", "--samples", str(rows), "--out", str(out), "--tol", "0"]) == 0
    printed = capsys.readouterr().out
    assert "fixed-point gap" in printed and "forgotten.forget.json" in printed
    record = json.loads((tmp_path / "forgotten.forget.json").read_text())
    assert record["users"] == [3, 4, 9] and record["method"] == "exact" and record["gap"] < 1e-9
    assert record["records"] == 3 * 30 + 3
    # the command does what the library does
    direct = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[3, 4, 9], forget_samples=[0, 1, 40],
                          tol=0.0)
    np.testing.assert_allclose(AMHTLRS.load(out).theta_, direct.model.theta_, atol=1e-12)


def test_npz_samples_and_a_record_path(tmp_path, capsys):
    data = tmp_path / "samples.npz"
    np.savez(data, X=PROBLEM.X, y=PROBLEM.y, users=PROBLEM.users)
    model, out, record = tmp_path / "m.npz", tmp_path / "f.npz", tmp_path / "rec.json"
    assert main(["lrs", "fit", "--data", str(data), "--out", str(model), *FIT]) == 0
    assert main(["lrs", "forget", "--model", str(model), "--data", str(data), "--users", "0", "--out", str(out),
                 "--record", str(record)]) == 0
    assert json.loads(record.read_text())["users"] == [0]


def run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_bad_inputs_name_the_option_file_and_line(tmp_path, samples, fitted, capsys):
    out = str(tmp_path / "out.npz")
    common = ["--data", str(samples), "--out", out]
    code, err = run(capsys, "lrs", "forget", "--model", str(fitted), *common, "--users", "20")
    assert code == 2 and "--users: user id 20 is out of range; the model has 20 users" in err
    code, err = run(capsys, "lrs", "forget", "--model", str(fitted), *common)
    assert code == 2 and "give --users and/or --samples" in err
    with pytest.raises(SystemExit) as exc:  # argparse: usage and the option's message
        main(["lrs", "forget", "--model", str(fitted), *common, "--users", "x"])
    assert exc.value.code == 2 and "argument --users: expected comma-separated" in capsys.readouterr().err
    rows = tmp_path / "rows.csv"
    rows.write_text("row\n1\n9999\n")
    code, err = run(capsys, "lrs", "forget", "--model", str(fitted), *common, "--samples", str(rows))
    assert code == 2 and f"--samples: {rows}:3: row 9999 is out of range" in err
    code, err = run(capsys, "lrs", "forget", "--model", str(samples), *common, "--users", "1")
    assert code == 2 and "--model:" in err and "not a model file written by `bilinrec lrs fit`" in err
    code, err = run(capsys, "lrs", "forget", "--model", str(fitted), "--data", str(samples), "--out", out,
                    "--users", ",".join(map(str, range(20))))
    assert code == 2 and "forgetting all users" in err

    lines = samples.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1], "7,oops" + lines[2][lines[2].index(",", 2):], *lines[3:]]) + "\n")
    code, err = run(capsys, "lrs", "fit", "--data", str(bad), "--out", out, *FIT)
    assert code == 2 and f"--data: {bad}:3: column 'y' must be a finite number, got 'oops'" in err
    gap = tmp_path / "gap.csv"
    gap.write_text("user,y,x0,x2\n0,1.0,0.5,0.5\n")
    code, err = run(capsys, "lrs", "fit", "--data", str(gap), "--out", out, *FIT)
    assert code == 2 and f"--data: {gap}:1: feature columns must be x0..x2 without gaps; x1 is missing" in err
    code, err = run(capsys, "lrs", "fit", "--data", str(tmp_path / "missing.csv"), "--out", out, *FIT)
    assert code == 2 and "--data" in err and "does not exist" in err


def test_row_file_with_a_surplus_field_on_every_line(tmp_path, samples, fitted, capsys):
    """pandas alone makes the first field of every line the row index: rows 3 and 5 were read as 4
    and 6 and forgotten with success reported."""
    rows = tmp_path / "rows.csv"
    rows.write_text("row\n3,4\n5,6\n")
    before = sorted(tmp_path.iterdir())
    code, err = run(capsys, "lrs", "forget", "--model", str(fitted), "--data", str(samples), "--samples", str(rows),
                    "--out", str(tmp_path / "out.npz"))
    assert code == 2 and f"--samples: {rows}:2: 2 fields, but the header has 1" in err, err
    assert sorted(tmp_path.iterdir()) == before  # neither the model nor the record was written
