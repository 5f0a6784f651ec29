"""One scenario's figures: samples per tool and metric, shown as median (min-max)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    digits: int = 1

    def show(self, value: float) -> str:
        return f"{value:,.{self.digits}f}"


@dataclass
class Table:
    number: int
    title: str
    setup: str  # what was run, in one paragraph
    columns: list[Column]
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    text: dict[tuple[str, str], str] = field(default_factory=dict)  # cells that hold words
    notes: list[str] = field(default_factory=list)

    def add(self, row: str, key: str, value: float) -> None:
        self.samples.setdefault(row, {}).setdefault(key, []).append(value)

    def say(self, row: str, key: str, words: str) -> None:
        self.samples.setdefault(row, {})
        self.text[(row, key)] = words

    def values(self, row: str, key: str) -> list[float]:
        return self.samples.get(row, {}).get(key, [])

    def median(self, row: str, key: str) -> float | None:
        values = self.values(row, key)
        return statistics.median(values) if values else None

    def cell(self, row: str, column: Column) -> str:
        if (row, column.key) in self.text:
            return self.text[(row, column.key)]
        values = self.values(row, column.key)
        if not values:
            return "n/a"
        middle = column.show(statistics.median(values))
        if len(values) == 1 or min(values) == max(values):
            return middle
        return f"{middle} ({column.show(min(values))}\N{EN DASH}{column.show(max(values))})"

    def markdown(self) -> str:
        header = ["tool", *(c.label for c in self.columns)]
        lines = [
            f"## {self.number}. {self.title}",
            "",
            self.setup,
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for row in self.samples:
            cells = [row, *(self.cell(row, c) for c in self.columns)]
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"
