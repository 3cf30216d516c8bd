"""The one error type for bad user input: the CLI prints it as one line and exits 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input, named by where it came from (file, line, object)."""

    def __init__(self, message: str, *, source: str = "", obj: str = "") -> None:
        self.message = message
        self.source = source
        self.obj = obj
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.obj) if part)
        return f"{where}: {self.message}" if where else self.message
