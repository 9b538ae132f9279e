"""Progress reporting for long work, without printing from the library.

Library functions accept a `Progress`; the CLI passes one that draws a bar on a terminal and
stays quiet in a pipe. The default does nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


NULL_PROGRESS = NullProgress()
