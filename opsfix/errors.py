"""One root exception, one subclass per phase, so the CLI can map each to an exit code."""

from __future__ import annotations

from dataclasses import dataclass


class OpsfixError(Exception):
    """Root of every error opsfix raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where a bad value came from: file, 1-based line and column, and the field path."""

    file: str
    line: int | None = None
    column: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}" if self.field else where


class InputError(OpsfixError):
    """Bad user input (playbook, inventory, variables): exit 4, nothing runs."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class InventoryError(InputError):
    """The inventory, its group_vars/host_vars, or a --limit pattern is invalid."""


class PlaybookError(InputError):
    """The playbook is malformed, names an unknown plugin, or a value is invalid."""


class VariableError(InputError):
    """A template refers to an undefined variable or fails to render."""


class NoHostsError(OpsfixError):
    """The host pattern and --limit leave no host to work on: exit 1, as ansible-playbook."""


class OptionsError(OpsfixError):
    """Bad command-line options: exit 5."""


class PluginError(OpsfixError):
    """A check or remediation module is malformed (caught when it loads)."""


class ConnectionFailed(OpsfixError):
    """A host cannot be reached, refused authentication, or presented a bad host key."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class HostKeyError(ConnectionFailed):
    """The host key is unknown or changed; the host is refused."""


class CommandTimeout(OpsfixError):
    """A remote command ran past its deadline; its channel was closed.

    `stdout` and `stderr` hold what it wrote before that, so a batch of commands can keep
    the results of those that finished.
    """

    def __init__(
        self, host: str, command: str, timeout: float, stdout: str = "", stderr: str = ""
    ) -> None:
        self.host = host
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{host}: command timed out after {timeout:g}s")


class LabError(OpsfixError):
    """The practice lab could not be built, inspected or removed."""
