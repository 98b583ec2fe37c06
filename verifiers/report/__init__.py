"""The report of a run, read from its typed results (:mod:`verifiers.results`): as text for the
terminal (:mod:`~verifiers.report.text`), as a JSON document (:mod:`~verifiers.report.document`),
and as pictures (:mod:`~verifiers.report.plot`, :mod:`~verifiers.report.animate`, which need
matplotlib and are imported only when asked for). Nothing here computes a check.
"""

from __future__ import annotations

from verifiers.report.document import to_json
from verifiers.report.text import print_report, verdict

__all__ = ["print_report", "to_json", "verdict"]
