"""Progress reporting for long runs: a tqdm bar when tqdm is installed, else a line per update."""

from __future__ import annotations

import sys


class Progress:
    """A progress bar over ``total`` units (steps, methods); falls back to lines on stderr without tqdm."""

    def __init__(self, total: int, label: str, unit: str = "step"):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self.bar = tqdm(total=total, desc=label, unit=unit) if tqdm else None
        self.total, self.done, self.label, self.unit = total, 0, label, unit

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            print(f"{self.label}: {self.done}/{self.total} {self.unit}s", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
