"""Shared utilities: seeds, atomic output, tables, figures, provenance."""

import numpy as np
import pandas as pd
import pytest

from bilinrec.experiments.methods import method_color, method_label
from bilinrec.io import atomic_path, load_npz, read_json, save_npz, write_json
from bilinrec.plotting import savefig, use_style
from bilinrec.provenance import collect_provenance
from bilinrec.seeds import derive_rng, derive_seed
from bilinrec.tables import display_table, format_mean_std, summarize, write_table


def test_derive_seed_is_deterministic_and_key_sensitive():
    assert derive_seed(1, "unlearn", 0) == derive_seed(1, "unlearn", 0)
    seeds = {derive_seed(1, "unlearn", i) for i in range(100)}
    assert len(seeds) == 100
    assert derive_seed(1, "a") != derive_seed(2, "a")
    assert derive_seed(1, "a", 1) != derive_seed(1, ("a", 1))
    assert derive_rng(5, "x").integers(1 << 30) == derive_rng(5, "x").integers(1 << 30)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_derive_seed_rejects_bad_root(bad):
    with pytest.raises(ValueError, match="root seed"):
        derive_seed(bad)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("garbage")
            raise RuntimeError
    assert read_json(target) == {"a": 1}


def test_npz_roundtrip_and_no_pickles(tmp_path):
    save_npz(tmp_path / "a.npz", x=np.arange(3), y=np.ones((2, 2)))
    data = load_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(data["x"], np.arange(3))
    with pytest.raises(TypeError, match="pickle"):
        save_npz(tmp_path / "b.npz", z=np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "b.npz").exists()


def test_write_json_handles_numpy_scalars(tmp_path):
    write_json(tmp_path / "a.json", {"n": np.int64(3), "f": np.float32(0.5), "v": np.arange(2)})
    assert read_json(tmp_path / "a.json") == {"n": 3, "f": 0.5, "v": [0, 1]}


@pytest.mark.parametrize(
    "mean,std,expected",
    [(0.87312, 0.0041, "0.8731 ± 0.0041"), (12.3456, 1.2, "12.3 ± 1.2"), (3.0, None, "3.000"), (0.5, 0.0, "0.500 ± 0.000")],
)
def test_format_mean_std(mean, std, expected):
    assert format_mean_std(mean, std) == expected


def test_summarize_and_write_table(tmp_path):
    df = pd.DataFrame({"method": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "auc": [0.8, 0.9, 0.5, 0.7]})
    summary = summarize(df, ["method"], ["auc"])
    assert summary.loc[summary.method == "a", "auc_mean"].item() == pytest.approx(0.85)
    assert summary.loc[summary.method == "b", "auc_count"].item() == 2
    shown = display_table(summary, ["method"], ["auc"])
    paths = write_table(summary, tmp_path / "t.csv", display=shown, caption="AUC")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    assert "0.850 ± 0.071" in (tmp_path / "t.md").read_text()
    tex = (tmp_path / "t.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert pd.read_csv(tmp_path / "t.csv").shape == summary.shape


def test_savefig_is_byte_identical(tmp_path):
    import matplotlib.pyplot as plt

    use_style()
    pdfs = []
    for i in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 3, 2], color=method_color("amht_lrs"), label=method_label("amht_lrs"))
        ax.legend()
        savefig(fig, tmp_path / f"f{i}")
        pdfs.append((tmp_path / f"f{i}.pdf").read_bytes())
        assert (tmp_path / f"f{i}.png").stat().st_size > 0
    assert pdfs[0] == pdfs[1]
    assert method_label("amht_lrs") == "AMHT-LRS"
    assert method_color("unknown-method").startswith("#")


def test_provenance_records_config_versions_and_git(tmp_path):
    prov = collect_provenance({"seed": 3}, repo=tmp_path)
    assert prov["config"] == {"seed": 3}
    assert prov["packages"]["numpy"] == np.__version__
    assert prov["git"] == {"commit": None, "dirty": None}
    assert prov["cpu_count"] >= 1
