"""A titled table printed as text (the console) or Markdown (RESULTS.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple


@dataclass
class Table:
    title: str
    header: Tuple[str, ...]
    rows: List[Tuple[str, ...]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [max(len(str(c)) for c in column) for column in zip(self.header, *self.rows)]
        lines = [f"== {self.title}",
                 "  ".join(h.ljust(w) for h, w in zip(self.header, widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in self.rows]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "",
                 "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
                  for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)
