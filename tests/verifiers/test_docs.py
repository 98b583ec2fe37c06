"""The README and the docs show what the code does today, on any machine.

Every output sample sits between ``<!-- run: ARGS -->`` markers and every worked example shown
whole between ``<!-- file: PATH -->`` markers; ``docs/refresh_output.py --check`` compares each
with a fresh run or the file. The few fenced blocks without a marker (Python examples) are run
here instead, and what they say they print is checked.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, has, refresh_output

FENCE = re.compile(r"^```(?P<info>\S*)\n(?P<body>.*?)^```\n", re.S | re.M)


refresh = refresh_output()


def _every_engine_on_the_cpu() -> bool:
    """The samples are runs of every engine, on the CPU."""
    if not (has("torch") and has("jax") and has("autograd")):
        return False
    import jax
    import torch

    return not torch.cuda.is_available() and jax.default_backend() == "cpu"


EVERY_ENGINE = pytest.mark.skipif(
    not _every_engine_on_the_cpu(), reason="the samples are every engine's runs on the CPU"
)


def _unmarked_blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of each fenced block of `path` outside the sample markers."""
    text = path.read_text()
    marked = [b.span for b in refresh.blocks(path, files=True)]
    return [
        (match.group("info"), match.group("body"))
        for match in FENCE.finditer(text)
        if not any(start <= match.start() < end for start, end in marked)
    ]


def _readme_python(first_line: str) -> str:
    """The README's Python block that starts with `first_line`."""
    (body,) = [
        body
        for info, body in _unmarked_blocks(REPO_ROOT / "README.md")
        if info == "python" and body.startswith(first_line)
    ]
    return body


# The README's unmarked blocks, by their first line, and the test that checks each.
CHECKED_HERE = {
    "from verifiers import Settings, verify": "test_the_python_api_example_runs",
    "import numpy as np\nfrom hypothesis": "test_testing.py::test_the_readme_models_sections_"
    "pytest_example_passes_and_fails_as_shown",
    "AssertionError: the gradient is wrong": "test_testing.py::test_the_readme_models_sections_"
    "pytest_example_passes_and_fails_as_shown",
    "from minigrad import Tensor, draw, grad": "test_the_engine_examples_run_and_say_what_they_"
    "print",
    "import numpy as np\n\nfrom minigrad": "test_the_engine_examples_run_and_say_what_they_print",
}


# ---- every block is marked or checked -----------------------------------------------------------
def test_every_fenced_block_is_a_marked_sample_or_checked_here():
    for path in refresh.targets():
        for info, body in _unmarked_blocks(path):
            checked = [first for first in CHECKED_HERE if body.startswith(first)]
            unchecked = path.name != "README.md" or not checked
            assert not unchecked, (
                f"{path.relative_to(REPO_ROOT)}: a ```{info} block without a <!-- run: --> or "
                f"<!-- file: --> marker, and no test here checks it:\n{body[:200]}"
            )


def test_every_marker_is_well_formed_and_names_a_real_run_or_file():
    found = 0
    for path in refresh.targets():
        for block in refresh.blocks(path, files=True):  # exits on a garbled marker
            found += 1
            if block.file:
                assert (REPO_ROOT / block.args).is_file(), block
            else:
                command = "check" if block.kind == "run-check" else "run"
                assert block.text.startswith(f"```\n$ python -m verifiers.{command} {block.args}\n")
    assert found >= 20


# ---- the samples on other CPUs' kernels (tests/test_docs_samples.py checks each file's samples)
def _avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


# Other kernels on the same machine, as another CPU would pick: OpenBLAS's Haswell kernels and
# numpy's without AVX-512 (for numpy's BLAS, sums and exponentials), MKL and ATen at AVX2 (torch),
# XLA at AVX2 (jax).
OTHER_KERNELS = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F,AVX512CD,AVX512_SKX,AVX512_CLX,AVX512_CNL,AVX512_ICL,"
    "AVX512_SPR",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
}
# The samples whose last bits differed between CPUs before their cells were made stable: Hessians
# with zero eigenvalues, gradients summed by matrix products, a saturated --loss.
SENSITIVE = [
    "data/classes.csv --model softmax",
    "data/wave.csv --model mlp",
    "data/data.csv --loss docs/models/examples/log_cosh.py:loss "
    "--manual docs/models/examples/log_cosh.py:gradient",
]


@pytest.mark.slow
@EVERY_ENGINE
@pytest.mark.skipif(not _avx2(), reason="the other kernels are x86 AVX2 ones")
@pytest.mark.parametrize("args", SENSITIVE)
def test_the_samples_are_the_same_with_other_cpu_kernels(args):
    shown = [
        block.text.rstrip("\n")
        for path in refresh.targets()
        for block in refresh.blocks(path)
        if block.args == args and block.tail is None and block.head is None
    ]
    assert shown, f"no whole sample of {args}"
    env = dict(os.environ, COLUMNS=str(refresh.WIDTH), **OTHER_KERNELS)
    result = subprocess.run(
        [sys.executable, "-m", "verifiers.run", *args.split()],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode in (0, 1), result.stderr
    fresh = f"```\n$ python -m verifiers.run {args}\n{result.stdout.rstrip()}\n```"
    assert fresh == shown[0]


# ---- the README's unmarked examples -------------------------------------------------------------
@pytest.mark.slow
def test_the_python_api_example_runs(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # it names data/data.csv
    namespace: dict = {}
    exec(compile(_readme_python("from verifiers import Settings, verify"), "README", "exec"),
         namespace)  # fmt: skip
    report = namespace["report"]
    assert report.ok
    assert report.engines["loop"].trajectory.theta.tolist() == [
        0.08893651993741346,
        1.4777440851894448,
    ]


def test_the_engine_examples_run_and_say_what_they_print(tmp_path, monkeypatch, capsys):
    namespace: dict = {}
    try_it = _readme_python("from minigrad import Tensor, draw, grad")
    monkeypatch.chdir(tmp_path)  # it draws loss.svg in the working directory
    exec(compile(try_it, "README", "exec"), namespace)
    b, w = namespace["b"], namespace["w"]
    # The gradients of the two-point MSE at b = w = 0: -(2/N) Σ r and -(2/N) Σ x·r, r = y.
    assert b.data == pytest.approx(1e-4 * (31.7 + 68.8))
    assert w.data == pytest.approx(1e-4 * (32.5 * 31.7 + 53.4 * 68.8))
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<")
    assert "mean" in capsys.readouterr().out  # the printed graph names its nodes
    # The softplus example ends with an expression whose value its comment gives: [].
    softplus = _readme_python("import numpy as np\n\nfrom minigrad")
    tree = ast.parse(softplus)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr)
    assert re.search(r"check_graph\(.*\)\s+# \[\]", softplus)
    namespace = {}
    exec(compile(tree, "README", "exec"), namespace)
    assert eval(compile(ast.Expression(last.value), "README", "eval"), namespace) == []
