"""The ``bilinrec als fit|forget`` command line on small files made in the test."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bilinrec.cli import main
from bilinrec.models.als import ALS, apply_deletions


@pytest.fixture()
def interactions(tmp_path):
    rng = np.random.default_rng(0)
    dense = (rng.random((25, 20)) < 0.3) * (1 + 4 * rng.random((25, 20)))
    users, items = np.nonzero(dense)
    path = tmp_path / "x.csv"
    pd.DataFrame({"user": users, "item": items, "confidence": dense[users, items]}).to_csv(path, index=False)
    return path, sp.csr_matrix(dense)


def test_fit_then_forget(tmp_path, interactions, capsys):
    path, C = interactions
    model_path, out_path = tmp_path / "m.npz", tmp_path / "m2.npz"
    assert main(["als", "fit", "--interactions", str(path), "--out", str(model_path), "--factors", "4",
                 "--iterations", "5", "--n-users", "25", "--n-items", "20", "--quiet"]) == 0
    fitted = ALS.load(model_path)
    assert fitted.train_iterations_ == 5 and fitted.user_factors_.shape == (25, 4)
    assert "iterations      5" in capsys.readouterr().out
    pairs = np.argwhere(C.toarray() != 0)[:7]
    delete = tmp_path / "d.csv"
    pd.DataFrame(pairs, columns=["user", "item"]).to_csv(delete, index=False)
    assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--delete",
                 str(delete), "--out", str(out_path), "--max-iterations", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "7 deleted cells" in out and "wall-clock ratio" in out
    forgotten = ALS.load(out_path)
    expected = fitted.unlearn(C, pairs, max_iterations=3)
    np.testing.assert_allclose(forgotten.user_factors_, expected.user_factors_, rtol=1e-12)
    reduced = apply_deletions(C, pairs).C
    assert forgotten.objective(reduced) == pytest.approx(forgotten.history_[-1]["objective"], rel=1e-12)


def test_npz_interactions_are_accepted(tmp_path, interactions):
    _, C = interactions
    sp.save_npz(tmp_path / "x.npz", C)
    assert main(["als", "fit", "--interactions", str(tmp_path / "x.npz"), "--out", str(tmp_path / "m.npz"),
                 "--factors", "2", "--iterations", "1", "--solver", "cg", "--quiet"]) == 0
    assert ALS.load(tmp_path / "m.npz").solver == "cg"


def test_cli_errors_are_clear(tmp_path, interactions, capsys):
    path, C = interactions
    model_path = tmp_path / "m.npz"
    main(["als", "fit", "--interactions", str(path), "--out", str(model_path), "--factors", "2",
          "--iterations", "1", "--n-users", "25", "--n-items", "20", "--quiet"])
    delete = tmp_path / "d.csv"
    free = np.argwhere(C.toarray() == 0)[:1]
    pd.DataFrame(free, columns=["user", "item"]).to_csv(delete, index=False)
    assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--delete", str(delete),
                 "--out", str(tmp_path / "m2.npz"), "--quiet"]) == 2
    assert "is not an observed cell of --interactions" in capsys.readouterr().err
    assert not (tmp_path / "m2.npz").exists()
    pd.DataFrame({"user": [0], "thing": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["als", "fit", "--interactions", str(tmp_path / "bad.csv"), "--out", str(model_path)]) == 2
    assert "lacks column(s) confidence, item" in capsys.readouterr().err


def test_forget_with_an_empty_deletion_file_is_a_noop(tmp_path, interactions, capsys):
    path, _ = interactions
    model_path = tmp_path / "m.npz"
    main(["als", "fit", "--interactions", str(path), "--out", str(model_path), "--factors", "2",
          "--iterations", "1", "--n-users", "25", "--n-items", "20", "--quiet"])
    delete = tmp_path / "d.csv"
    delete.write_text("user,item\n")
    capsys.readouterr()
    with pytest.warns(UserWarning, match="empty deletion set"):
        assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--delete",
                     str(delete), "--out", str(tmp_path / "m2.npz"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 deleted cells" in out and "speedup" not in out and "ratio" not in out.split("ledger")[1] and "nothing was deleted" in out
    np.testing.assert_array_equal(ALS.load(tmp_path / "m2.npz").user_factors_, ALS.load(model_path).user_factors_)


def test_forget_with_bm25_weighting_recomputes_and_keeps_a_ledger(tmp_path, interactions, capsys):
    path, C = interactions
    model_path = tmp_path / "m.npz"
    assert main(["als", "fit", "--interactions", str(path), "--out", str(model_path), "--factors", "3",
                 "--iterations", "3", "--n-users", "25", "--n-items", "20", "--weighting", "bm25",
                 "--weight-scale", "5", "--bm25-rows", "users", "--quiet"]) == 0
    assert ALS.load(model_path).get_params()["weighting"]["bm25_rows"] == "users"
    pairs = np.argwhere(C.toarray() != 0)
    for name, chunk in (("a", pairs[:3]), ("b", pairs[3:6])):
        pd.DataFrame(chunk, columns=["user", "item"]).to_csv(tmp_path / f"{name}.csv", index=False)
    src = model_path
    for name in ("a", "b"):  # the second call passes the ORIGINAL interactions again
        out = tmp_path / f"m_{name}.npz"
        assert main(["als", "forget", "--model", str(src), "--interactions", str(path), "--delete",
                     str(tmp_path / f"{name}.csv"), "--out", str(out), "--max-iterations", "2", "--quiet"]) == 0
        src = out
    text = capsys.readouterr().out
    assert "recomputed on the reduced data" in text and "6 pair(s) forgotten in all" in text
    final = ALS.load(src)
    assert len(final.deleted_pairs_) == 6 and final.ledger_[-1]["reapplied"] == 3


def test_forget_certify_by_users_saves_the_certificate(tmp_path, interactions, capsys):
    import json

    from bilinrec.models.als import user_history

    path, C = interactions
    model_path, out_path = tmp_path / "m.npz", tmp_path / "m2.npz"
    assert main(["als", "fit", "--interactions", str(path), "--out", str(model_path), "--factors", "3",
                 "--iterations", "10", "--regularization", "0.3", "--n-users", "25", "--n-items", "20",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--users", "2,5",
                 "--out", str(out_path), "--certify"]) == 2  # a certificate needs the caller's tolerance
    assert "--certify needs --tolerance" in capsys.readouterr().err and not out_path.exists()
    tolerance = 1.5 * ALS.load(model_path).max_row_residual(C)
    assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--users", "2,5",
                 "--out", str(out_path), "--certify", "--tolerance", repr(tolerance)]) == 0
    out = capsys.readouterr().out
    certificate = json.loads((tmp_path / "m2.certificate.json").read_text())
    assert "certified       yes" in out and str(tmp_path / "m2.certificate.json") in out
    assert "own-history AUC of the forgotten users 0.5000" in out and "membership AUC of the deleted records" in out
    assert certificate["certified"] and certificate["method"] == "certified" and certificate["users"] == [2, 5]
    assert certificate["gap"] <= certificate["bound"] == tolerance
    # the certificate is re-verified from scratch, and fails for another model or other data
    cert = str(tmp_path / "m2.certificate.json")
    assert main(["als", "verify", "--model", str(out_path), "--interactions", str(path), "--certificate", cert]) == 0
    assert "certificate verified" in capsys.readouterr().out
    assert main(["als", "verify", "--model", str(model_path), "--interactions", str(path), "--certificate", cert]) == 1
    assert "the model is not the one certified" in capsys.readouterr().out
    expected = ALS.load(model_path).forget(C, users=[2, 5], tolerance=tolerance).model
    forgotten = ALS.load(out_path)
    np.testing.assert_array_equal(forgotten.user_factors_, expected.user_factors_)
    np.testing.assert_array_equal(forgotten.deleted_pairs_, user_history(C, [2, 5]))
    # --users without --certify: Unlearn-ALS on the users' histories
    assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path), "--users", "2",
                 "--out", str(tmp_path / "m3.npz"), "--max-iterations", "2", "--quiet"]) == 0
    assert f"{C[2].nnz} deleted cells" in capsys.readouterr().out
    # errors name the source, no tracebacks
    for extra, message in ((["--users", "2,x"], "--users: expected comma-separated"),
                           (["--users", "99"], "--users: user id 99 is out of range"),
                           ([], "forget needs --delete"),
                           (["--users", "2", "--certify", "--mode", "mask"], "--certify forgets under retraining")):
        assert main(["als", "forget", "--model", str(model_path), "--interactions", str(path),
                     "--out", str(tmp_path / "bad.npz"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "bad.npz").exists()
