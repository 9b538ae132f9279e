"""The one exception tree of horizon-match.

Every message says what was wrong and what to do next; the CLI prints it as is and exits
non-zero. Library code raises these, never SystemExit.

HorizonMatchError
├── ConfigError            bad setting (URL, path, option value)
├── InputError             a file or value given by the user is unusable
│   └── ValidationError    a file was checked whole and has problems (each `file:line: field: ...`)
├── NotFoundError          an id that is not in the database
├── DatabaseError          cannot open / upgrade the database
├── FetchError             the portal (or a mirror) could not be read
├── ModelUnavailableError  an embedding model or its package is missing
├── LockedError            another run holds the job lock
└── MailError              the mail server refused or failed
"""

from __future__ import annotations

from dataclasses import dataclass


class HorizonMatchError(Exception):
    """Base class: `str(error)` is a sentence fit to show the user."""


class ConfigError(HorizonMatchError):
    pass


class InputError(HorizonMatchError):
    pass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ValidationError(InputError):
    """A whole file was checked; nothing was written. `problems` lists every issue found."""

    def __init__(self, problems: list[Problem], summary: str | None = None) -> None:
        self.problems = list(problems)
        head = summary or (
            f"{len(self.problems)} problem(s) found, nothing was imported; "
            "fix them and run the command again"
        )
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class NotFoundError(HorizonMatchError):
    pass


class DatabaseError(HorizonMatchError):
    pass


class FetchError(HorizonMatchError):
    pass


class ModelUnavailableError(HorizonMatchError):
    pass


class LockedError(HorizonMatchError):
    pass


class MailError(HorizonMatchError):
    pass
