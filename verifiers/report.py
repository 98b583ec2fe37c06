"""The report of a run, as text (:mod:`verifiers.text_report`) and as JSON
(:mod:`verifiers.json_report`)."""

from __future__ import annotations

from verifiers.json_report import to_json
from verifiers.text_report import print_report, verdict

__all__ = ["print_report", "to_json", "verdict"]
