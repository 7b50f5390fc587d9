"""Bad measurement input: every problem with its file, its place (line, JSON path) and column.

``InputError.problems`` are printed one a line by ``capsim calibrate`` (exit code 2)::

    requests.csv:14: column 'latency_ms' (latency): expected a duration >= 0, got '-3'
    report.json: $.intermediate[2].counters: expected a mapping, got 17
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputProblem", "InputError"]


@dataclass(frozen=True)
class InputProblem:
    file: str
    message: str
    line: int | None = None           # 1-based line of the file (CSV: the header is line 1)
    where: str = ""                   # a JSON path ($.aggregate.counters) or a column ("column 'rt' (latency)")

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join(s for s in (place, self.where, self.message) if s)


class InputError(Exception):
    """Everything wrong with one input (``problems``), one per line in ``str()``."""

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))

    @classmethod
    def one(cls, file, message: str, line: int | None = None, where: str = "") -> "InputError":
        return cls([InputProblem(str(file), message, line, where)])
