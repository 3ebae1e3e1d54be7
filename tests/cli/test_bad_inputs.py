"""A corpus of malformed inputs: one case per kind of bad input.

Every case runs the ``bilinrec`` command and asserts that it exits with code 2 (never a
traceback), that the message names the user's own file (or the archive and its member, or the
argument/key) and the offending line or text, and that nothing partial is left behind.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from bilinrec.cli import main

ROWS = "user,item,rating\n1,10,4\n2,11,5\n3,12,3\n"


@pytest.fixture
def dirs(tmp_path):
    inputs, work = tmp_path / "inputs", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    return inputs, work


def run(capsys, *argv):
    """Run ``bilinrec argv``; return (exit code, stderr). SystemExit (argparse) counts as its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------
# Custom ratings files: `bilinrec data prepare mine` (fetch + prepare)
# ------------------------------------------------------------------------------------------
def custom_config(inputs: Path, path: Path, **entry) -> Path:
    config = inputs / "config.yaml"
    spec = {"path": str(path), "columns": {"user": "user", "item": "item", "rating": "rating"}, **entry}
    config.write_text(yaml.safe_dump({"data": {"custom": {"mine": spec}}}))
    return config


CUSTOM_CASES = {
    # name: (file bytes, expected fragments of the message after the file name)
    "non_numeric_rating": (b"user,item,rating\n1,10,4\n2,11,five\n", [":3:", "cannot read rating from 'five'"]),
    "latin1_bytes": (b"user,item,rating\n1,10,4\n2,Caf\xe9,5\n", [":3:", "not valid utf-8", "b'\\xe9'",
                                                                    "data.custom.mine.encoding"]),
    "short_line": (b"user,item,rating\n1,10,4\n2,11\n", [":3:", "expected 3 fields"]),
    "long_line": (b"user,item,rating\n1,10,4\n2,11,5,9\n", [":3:", "expected 3 fields"]),
    "header_only": (b"user,item,rating\n", ["no ratings"]),
    "empty_file": (b"", ["empty file"]),
    "html_page": (b"<!DOCTYPE html><html><body>Not found</body></html>\n", ["HTML page"]),
    "rating_off_scale": (b"user,item,rating\n1,10,4\n2,11,9\n", [":3:", "outside the scale [1, 5]"]),
    "duplicate_pair": (b"user,item,rating\n1,10,4\n1,10,5\n", [":3:", "duplicate rating", "first at line 2"]),
    "missing_header_column": (b"user,item,stars\n1,10,4\n", [":1:", "no column 'rating'"]),
    "nan_rating": (b"user,item,rating\n1,10,4\n2,11,nan\n", [":3:", "rating"]),
}


@pytest.mark.parametrize("case", sorted(CUSTOM_CASES))
def test_bad_custom_ratings_file(dirs, capsys, case):
    inputs, work = dirs
    content, fragments = CUSTOM_CASES[case]
    ratings = inputs / "my ratings.csv"
    ratings.write_bytes(content)
    config = custom_config(inputs, ratings)
    code, err = run(capsys, "data", "prepare", "mine", "--config", config, "--resources", work / "resources",
                    "--out", work / "prepared")
    assert code == 2, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"bilinrec: error: {ratings}"), message  # the user's file, not a temporary copy
    assert ".tmp" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert files_in(work) == []


def test_custom_file_with_the_right_encoding_is_read(dirs, capsys):
    inputs, work = dirs
    ratings = inputs / "latin.csv"
    ratings.write_bytes(b"user,item,rating\n1,10,4\n2,Caf\xe9,5\n")
    config = custom_config(inputs, ratings, encoding="latin-1")
    code, err = run(capsys, "data", "prepare", "mine", "--config", config, "--resources", work / "resources",
                    "--out", work / "prepared")
    assert code == 0, err
    assert (work / "prepared" / "mine" / "ratings.npz").is_file()


def test_missing_custom_file_names_the_config_key(dirs, capsys):
    inputs, work = dirs
    config = custom_config(inputs, inputs / "nope.csv")
    code, err = run(capsys, "data", "fetch", "mine", "--config", config, "--resources", work / "resources")
    assert code == 2 and "data.custom.mine.path" in err and "nope.csv" in err, err
    assert files_in(work) == []


def test_invalid_yaml_config(dirs, capsys):
    inputs, work = dirs
    config = inputs / "config.yaml"
    config.write_text("data: [unclosed\n")
    code, err = run(capsys, "data", "fetch", "ml-100k", "--config", config, "--resources", work / "resources")
    assert code == 2 and str(config) in err and "not valid YAML" in err, err


# ------------------------------------------------------------------------------------------
# Local MovieLens copies: archives and folders
# ------------------------------------------------------------------------------------------
U_DATA = b"1\t1\t5\t881250949\n2\t1\t3\t881250950\n"


def write_zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def patch_zip_header(path: Path, offset: int, value: int) -> None:
    """Set a 2-byte field of the (single) member's local and central headers (8: flags, 10: method)."""
    data = bytearray(path.read_bytes())
    data[offset - 2:offset] = struct.pack("<H", value)  # local header: flags at 6, method at 8
    central = data.find(b"PK\x01\x02")
    data[central + offset:central + offset + 2] = struct.pack("<H", value)  # central: flags at 8, method at 10
    path.write_bytes(bytes(data))


@pytest.fixture
def empty_config(dirs):
    inputs, _ = dirs
    config = inputs / "empty.yaml"
    config.write_text("{}\n")
    return config


def fetch_ml100k(capsys, work, local, config):
    return run(capsys, "data", "fetch", "ml-100k", "--resources", work / "resources", "--data-dir", local,
               "--no-download", "--config", config)


def test_local_archive_with_a_changed_ratings_file_names_archive_and_member(dirs, capsys, empty_config):
    inputs, work = dirs
    archive = write_zip(inputs / "local" / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    code, err = fetch_ml100k(capsys, work, inputs / "local", empty_config)
    assert code == 2, err
    assert f"{archive} member ml-100k/u.data: sha256" in err and "official archive" in err, err
    assert ".extract-" not in err
    assert files_in(work) == []


def test_local_folder_with_a_changed_ratings_file_names_that_file(dirs, capsys, empty_config):
    inputs, work = dirs
    folder_file = inputs / "local" / "ml-100k" / "u.data"
    folder_file.parent.mkdir(parents=True)
    folder_file.write_bytes(U_DATA)
    code, err = fetch_ml100k(capsys, work, inputs / "local", empty_config)
    assert code == 2, err
    assert f"{folder_file}: sha256" in err and ".tmp" not in err, err
    assert files_in(work) == []


@pytest.mark.parametrize(
    "case,fragments",
    [
        ("deflate64", ["Deflate64", "re-zip", "zip -r -Z deflate"]),
        ("encrypted", ["encrypted", "re-zip"]),
        ("truncated", ["not a valid zip archive"]),
        ("html", ["HTML page"]),
        ("wrong_content", ["has no member 'ml-100k/u.data'"]),
        ("zip_slip", ["escapes the target directory"]),
    ],
)
def test_bad_local_archive(dirs, capsys, empty_config, case, fragments):
    inputs, work = dirs
    archive = inputs / "local" / "ml-100k.zip"
    if case == "html":
        archive.parent.mkdir(parents=True)
        archive.write_bytes(b"<html><body>login</body></html>")
    elif case == "zip_slip":
        write_zip(archive, {"../evil.txt": b"x"})
    elif case == "wrong_content":
        write_zip(archive, {"ml-1m/ratings.dat": b"1::1::5::1\n"})
    else:
        write_zip(archive, {"ml-100k/u.data": U_DATA})
        if case == "deflate64":
            patch_zip_header(archive, 10, 9)
        elif case == "encrypted":
            patch_zip_header(archive, 8, 0x1)
        elif case == "truncated":
            archive.write_bytes(archive.read_bytes()[:40])
    code, err = fetch_ml100k(capsys, work, inputs / "local", empty_config)
    assert code == 2, err
    assert str(archive) in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert files_in(work) == []
    assert not (inputs / "evil.txt").exists()


# ------------------------------------------------------------------------------------------
# `bilinrec als fit`: interactions files
# ------------------------------------------------------------------------------------------
GOOD = "user,item,confidence\n0,0,1\n1,1,2\n1,0,3\n2,2,1\n"

FIT_CASES = {
    "non_numeric_id": ("user,item,confidence\n0,0,1\n1,abc,2\n", [":3:", "column 'item'", "'abc'"]),
    "non_numeric_value": ("user,item,confidence\n0,0,1\n1,1,lots\n", [":3:", "column 'confidence'", "'lots'"]),
    "nan_confidence": ("user,item,confidence\n0,0,1\n1,1,nan\n", [":3:", "finite number", "'nan'"]),
    "infinite_confidence": ("user,item,confidence\n0,0,inf\n", [":2:", "finite number"]),
    "negative_confidence": ("user,item,confidence\n0,0,-1\n", [":2:", "> 0"]),
    "negative_id": ("user,item,confidence\n-1,0,1\n", [":2:", "non-negative integer id"]),
    "fractional_id": ("user,item,confidence\n0,1.5,1\n", [":2:", "non-negative integer id", "'1.5'"]),
    "missing_value": ("user,item,confidence\n0,0,1\n1,1,\n", [":3:", "a missing value"]),
    "too_few_fields": ("user,item,confidence\n0,0,1\n1,1\n", [":3:", "2 fields, but the header has 3"]),
    "extra_field": ("user,item,confidence\n0,0,1\n1,1,2,3\n", [":3:", "4 fields, but the header has 3"]),
    # pandas alone reads the first field of every line as the row index: timestamps become confidences
    "extra_field_on_every_line": ("user,item,confidence\n0,0,1,100\n1,1,2,101\n1,0,3,102\n",
                                  [":2:", "4 fields, but the header has 3"]),
    "empty_file": ("", ["is empty", "user,item,confidence"]),
    "header_only": ("user,item,confidence\n", ["has a header but no rows"]),
    "wrong_header": ("u,i,c\n0,0,1\n", [":1:", "lacks column(s) confidence, item, user"]),
    "duplicate_pair": ("user,item,confidence\n0,0,1\n0,0,2\n", [":3:", "listed again", "first at line 2"]),
}


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_bad_interactions_file(dirs, capsys, case):
    inputs, work = dirs
    content, fragments = FIT_CASES[case]
    path = inputs / "interactions.csv"
    path.write_text(content)
    code, err = run(capsys, "als", "fit", "--interactions", path, "--out", work / "model.npz", "--factors", "2",
                    "--iterations", "1", "--quiet")
    assert code == 2, err
    assert f"--interactions: {path}" in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert files_in(work) == []


@pytest.mark.parametrize("case", ["latin1", "directory", "pickled_npz", "corrupt_npz", "npz_without_arrays"])
def test_bad_interactions_file_of_other_kinds(dirs, capsys, case):
    inputs, work = dirs
    path = inputs / ("interactions.npz" if "npz" in case else "interactions.csv")
    if case == "latin1":
        path.write_bytes(b"user,item,confidence\n0,0,1\n1,1,2\n# caf\xe9\n")
    elif case == "directory":
        path.mkdir()
    elif case == "pickled_npz":
        np.savez(path, user=np.array([object()], dtype=object), item=np.zeros(1, int), confidence=np.ones(1))
    elif case == "corrupt_npz":
        path.write_bytes(b"PK\x03\x04 not really")
    else:
        np.savez(path, x=np.zeros(3))
    code, err = run(capsys, "als", "fit", "--interactions", path, "--out", work / "model.npz", "--quiet")
    assert code == 2, err
    assert f"--interactions: {path}" in err, err
    assert files_in(work) == []


def test_bad_arguments_exit_2_naming_the_argument(dirs, capsys):
    inputs, work = dirs
    path = inputs / "interactions.csv"
    path.write_text(GOOD)
    for argv, name in ((("--factors", "0"), "--factors"), (("--iterations", "x"), "--iterations"),
                       (("--regularization", "-1"), "--regularization"), (("--n-users", "3"), "--n-users")):
        code, err = run(capsys, "als", "fit", "--interactions", path, "--out", work / "m.npz", *argv, "--quiet")
        assert code == 2 and name in err, err
    assert files_in(work) == []


def test_missing_interactions_file(dirs, capsys):
    inputs, work = dirs
    code, err = run(capsys, "als", "fit", "--interactions", inputs / "nope.csv", "--out", work / "m.npz")
    assert code == 2 and "--interactions" in err and "nope.csv" in err, err


def test_unwritable_output_is_reported_without_traceback(dirs, capsys):
    inputs, work = dirs
    path = inputs / "interactions.csv"
    path.write_text(GOOD)
    blocker = work / "file"
    blocker.write_text("")
    code, err = run(capsys, "als", "fit", "--interactions", path, "--out", blocker / "m.npz", "--factors", "2",
                    "--iterations", "1", "--quiet")
    assert code == 2 and str(blocker) in err, err


# ------------------------------------------------------------------------------------------
# `bilinrec als forget`: model files and deletion files
# ------------------------------------------------------------------------------------------
@pytest.fixture
def fitted(dirs, capsys):
    inputs, work = dirs
    interactions = inputs / "interactions.csv"
    interactions.write_text(GOOD)
    model = fit_model(capsys, interactions, inputs / "model.npz", iterations=2)
    delete = inputs / "delete.csv"
    delete.write_text("user,item\n1,1\n")
    return interactions, model, delete


def fit_model(capsys, interactions, model, iterations):
    """``bilinrec als fit`` of a 2-factor model (it must succeed); returns the model file."""
    code, err = run(capsys, "als", "fit", "--interactions", interactions, "--out", model, "--factors", "2",
                    "--iterations", str(iterations), "--quiet")
    assert code == 0, err
    return model


def _model_parts(model: Path):
    with np.load(model) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays["meta"]))


def _write_model(path: Path, arrays, meta=None):
    if meta is not None:
        arrays = {**arrays, "meta": np.array(json.dumps(meta))}
    np.savez(path, **arrays)


MODEL_CASES = {
    "pickled_entry": ["entry 'user_factors' holds pickled Python objects", "never unpickles"],
    "python_pickle": ["a Python pickle", "never unpickles"],
    "truncated": ["truncated or corrupt zip archive"],
    "empty": ["an empty file"],
    "meta_not_json": ["entry 'meta' is not valid JSON"],
    "meta_without_params": ["meta.params is missing"],
    "meta_missing": ["no 'meta' entry"],
    "wrong_format_tag": ["unknown model format 'other'", "meta.format"],
    "factor_width": ["entry 'user_factors' has 1 columns but meta.params.factors is 2"],
    "factor_dtype": ["entry 'user_factors' is float32 but meta.params.dtype is 'float64'"],
    "factor_nan": ["entry 'item_factors' holds NaN or infinite values"],
    "factor_1d": ["entry 'user_factors' must be a 2-D float32/float64 array"],
    "unknown_param": ["meta.params has unknown key(s) ['bogus']"],
    "bad_param_value": ["meta.params is not valid", "regularization"],
    "bias_without_use_bias": ["entry 'user_bias' is present but meta.params.use_bias is false"],
    "history_not_list": ["meta.history must be a list of objects"],
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_bad_model_file(dirs, capsys, fitted, case):
    inputs, work = dirs
    interactions, model, delete = fitted
    arrays, meta = _model_parts(model)
    bad = inputs / "bad_model.npz"
    if case == "pickled_entry":
        np.savez(bad, **{**arrays, "user_factors": np.array([object()], dtype=object)})
    elif case == "python_pickle":
        bad.write_bytes(pickle.dumps({"user_factors": [[1.0]]}))
    elif case == "truncated":
        bad.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "meta_not_json":
        np.savez(bad, **{**arrays, "meta": np.array("{params: oops")})
    elif case == "meta_without_params":
        _write_model(bad, arrays, {k: v for k, v in meta.items() if k != "params"})
    elif case == "meta_missing":
        np.savez(bad, **{k: v for k, v in arrays.items() if k != "meta"})
    elif case == "wrong_format_tag":
        _write_model(bad, arrays, {**meta, "format": "other"})
    elif case == "factor_width":
        np.savez(bad, **{**arrays, "user_factors": arrays["user_factors"][:, :1]})
    elif case == "factor_dtype":
        np.savez(bad, **{**arrays, "user_factors": arrays["user_factors"].astype(np.float32)})
    elif case == "factor_nan":
        np.savez(bad, **{**arrays, "item_factors": arrays["item_factors"] * np.nan})
    elif case == "factor_1d":
        np.savez(bad, **{**arrays, "user_factors": arrays["user_factors"].ravel()})
    elif case == "unknown_param":
        _write_model(bad, arrays, {**meta, "params": {**meta["params"], "bogus": 1}})
    elif case == "bad_param_value":
        _write_model(bad, arrays, {**meta, "params": {**meta["params"], "regularization": -1}})
    elif case == "bias_without_use_bias":
        np.savez(bad, **{**arrays, "user_bias": np.zeros(len(arrays["user_factors"]))})
    elif case == "history_not_list":
        _write_model(bad, arrays, {**meta, "history": "long"})
    code, err = run(capsys, "als", "forget", "--model", bad, "--interactions", interactions, "--delete", delete,
                    "--out", work / "forgotten.npz", "--quiet")
    assert code == 2, err
    assert f"--model: {bad}" in err, err
    for fragment in MODEL_CASES[case]:
        assert fragment in err, err
    assert files_in(work) == []


def test_model_file_loads_without_pickle(fitted):
    """The good model of the fixture round-trips through the validating loader."""
    from bilinrec.models.als import ALS

    _, model, _ = fitted
    loaded = ALS.load(model)
    assert loaded.is_fitted


@pytest.mark.parametrize(
    "content,fragments",
    [
        ("user,item\n0,1\n", [":2:", "(0, 1) is not an observed cell"]),
        ("user,item\n9,0\n", [":2:", "user id 9 is out of range"]),
        ("user,item\nx,0\n", [":2:", "column 'user'"]),
        ("u,i\n0,0\n", [":1:", "lacks column(s) item, user"]),
        ("", ["is empty"]),
        ("user,item\n1,1\n1,0,5\n", [":3:", "3 fields, but the header has 2"]),
        ("user,item,note\n1,1\n", [":2:", "2 fields, but the header has 3"]),
    ],
)
def test_bad_deletion_file(dirs, capsys, fitted, content, fragments):
    inputs, work = dirs
    interactions, model, _ = fitted
    delete = inputs / "bad_delete.csv"
    delete.write_text(content)
    code, err = run(capsys, "als", "forget", "--model", model, "--interactions", interactions, "--delete", delete,
                    "--out", work / "forgotten.npz", "--quiet")
    assert code == 2, err
    assert f"--delete: {delete}" in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert files_in(work) == []


def test_deletion_file_with_a_surplus_field_on_every_line(dirs, capsys):
    """pandas alone makes the first field of every line the row index: (0,2),(0,4),(0,6) were read as
    (2,6),(4,1),(6,3), all stored cells of a dense matrix, and deleted with success reported."""
    inputs, work = dirs
    interactions = inputs / "dense.csv"
    interactions.write_text("user,item,confidence\n" + "".join(f"{u},{i},1\n" for u in range(7) for i in range(7)))
    model = fit_model(capsys, interactions, inputs / "model.npz", iterations=1)
    delete = inputs / "delete.csv"
    delete.write_text("user,item\n0,2,6\n0,4,1\n0,6,3\n")
    code, err = run(capsys, "als", "forget", "--model", model, "--interactions", interactions, "--delete", delete,
                    "--out", work / "forgotten.npz", "--quiet")
    assert code == 2, err
    assert f"--delete: {delete}:2: 3 fields, but the header has 2" in err, err
    assert files_in(work) == []


def test_forget_with_interactions_that_do_not_match_the_model(dirs, capsys, fitted):
    inputs, work = dirs
    _, model, delete = fitted
    other = inputs / "other.csv"
    other.write_text("user,item,confidence\n0,0,1\n7,1,2\n")
    code, err = run(capsys, "als", "forget", "--model", model, "--interactions", other, "--delete", delete,
                    "--out", work / "forgotten.npz", "--quiet")
    assert code == 2 and f"--interactions: {other}:3: user id 7 is out of range" in err, err
    assert files_in(work) == []


# ------------------------------------------------------------------------------------------
# `bilinrec claims`
# ------------------------------------------------------------------------------------------
def test_claims_with_bad_inputs(dirs, capsys, monkeypatch):
    inputs, _ = dirs
    monkeypatch.chdir(inputs)
    bad_yaml = inputs / "c.yaml"
    bad_yaml.write_text("claims: {a1_min_r2: [\n")
    table = inputs / "t.csv"
    table.write_text("")
    code, err = run(capsys, "claims", f"dp_utility={table}", "--config", bad_yaml)
    assert code == 2 and str(bad_yaml) in err and "not valid YAML" in err, err
    from conftest import ROOT

    code, err = run(capsys, "claims", "nonsense=x.csv", "--config", ROOT / "config.yaml")
    assert code == 2 and "nonsense" in err, err


# ------------------------------------------------------------------------------------------
# The workflow: a bad custom file fails its fetch job, the log names the user's file
# ------------------------------------------------------------------------------------------
def test_workflow_fetch_of_a_bad_custom_file_names_it(workflow_copy):
    from conftest import run_snakemake

    ratings = workflow_copy / "mine.csv"
    ratings.write_bytes(b"user,item,rating\n1,10,4\n2,11,5\n3,12,five\n")
    overlay = workflow_copy / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"datasets": ["mine"], "data": {"custom": {"mine": {
        "path": "mine.csv", "columns": {"user": "user", "item": "item", "rating": "rating"}}}}}))
    proc = run_snakemake(workflow_copy, "resources/mine/source.json", "--cores", "1", "--configfile", str(overlay))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    log = (workflow_copy / "results/logs/data/fetch_mine.log").read_text()
    assert "mine.csv:4: cannot read rating from 'five'" in log and ".tmp" not in log, log
    assert "mine.csv:4: cannot read rating from 'five'" in out, out
    assert not (workflow_copy / "resources" / "mine").exists()


def test_documented_recovery_after_kill_9(workflow_copy):
    """docs/troubleshooting.md: after kill -9 a plain rerun fails on the stale lock; `snakemake --unlock`
    then `--rerun-incomplete` is the way out."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import run_snakemake

    overlay = workflow_copy / "slow.yaml"
    overlay.write_text(yaml.safe_dump({"dp": {"n_users": [3000], "n_seeds": 1, "methods": ["amht_lrs"],
                                              "epsilons": ["inf"], "fixed_epsilon": "inf",
                                              "large_users": {"n_users": []}}}))
    args = ["results/dp/records.csv", "--cores", "1", "--configfile", str(overlay)]
    log = workflow_copy / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--directory", str(workflow_copy), *args],
                                cwd=workflow_copy, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "rule dp_run" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
        time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of Snakemake and its job (their own session)
        proc.wait()
    rerun = run_snakemake(workflow_copy, *args)
    assert rerun.returncode != 0 and "cannot be locked" in rerun.stdout + rerun.stderr
    unlock = run_snakemake(workflow_copy, "--unlock", "--configfile", str(overlay))
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    again = run_snakemake(workflow_copy, *args[:1], "-n", *args[1:3], "--rerun-incomplete", *args[3:])
    assert again.returncode == 0 and "dp_run" in again.stdout + again.stderr, again.stdout + again.stderr
