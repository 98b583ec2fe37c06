"""The code in the README's "Reading the engine" section runs as written, and the picture it
shows is the one its code draws."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
PICTURE = README.parent / "docs" / "minigrad-graph.svg"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Reading the engine")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


@pytest.mark.parametrize("code", _blocks())
def test_reading_guide_code_runs(
    code: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the pictures it draws land here, not in the repository
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    if "check_graph(" in code:
        assert "[]" in code  # the example promises an empty list: hold it to that
        checked = eval(code.strip().splitlines()[-1].split("#")[0], namespace)
        assert checked == []


def test_the_readme_picture_is_what_its_code_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = [block for block in _blocks() if "draw(loss" in block]
    assert "docs/minigrad-graph.svg" in README.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    drawn = (tmp_path / "loss.svg").read_text(encoding="utf-8")
    assert drawn == PICTURE.read_text(encoding="utf-8")  # else: copy loss.svg to docs/
