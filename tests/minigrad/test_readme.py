"""The code in the README's "Reading the engine" section runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Reading the engine")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


@pytest.mark.parametrize("code", _blocks())
def test_reading_guide_code_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    if "check_graph(" in code:
        assert "[]" in code  # the example promises an empty list: hold it to that
        checked = eval(code.strip().splitlines()[-1].split("#")[0], namespace)
        assert checked == []
