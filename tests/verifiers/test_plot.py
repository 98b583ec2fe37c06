"""--plot through the API: a PNG of the expected size, and nothing left behind on failure."""

from __future__ import annotations

import struct

import pytest

from verifiers import Settings, verify
from verifiers.data import load_csv

from .helpers import DATA_CSV, NUMPY_ENGINES

pytest.importorskip("matplotlib", reason="matplotlib is not installed")

from verifiers.output import OutputError
from verifiers.plot import save_plot


@pytest.fixture(scope="module")
def report():
    return verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=30))


def test_png_of_the_expected_size(report, tmp_path):
    target = tmp_path / "plot.png"
    save_plot(report, target)
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 500)
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_a_failure_while_writing_leaves_no_file(report, tmp_path, monkeypatch):
    import matplotlib.figure

    def broken_savefig(self, file, **kwargs):
        file.write(b"\x89PNG half a file")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    target = tmp_path / "plot.png"
    with pytest.raises(OutputError, match="disk full"):
        save_plot(report, target)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_plot_survives_a_failed_rewrite(report, tmp_path, monkeypatch):
    import matplotlib.figure

    target = tmp_path / "plot.png"
    target.write_bytes(b"previous plot")

    def broken_savefig(self, path, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError):
        save_plot(report, target)
    assert target.read_bytes() == b"previous plot"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]
