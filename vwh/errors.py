"""The one error hierarchy of vwh.

The library raises these; the CLI turns each into one line on stderr and the exit
code below. Exit codes are an API: scripts branch on them, so never renumber.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # something failed (a check failed, the store is unusable, ...)
    USAGE = 2  # bad option, unreadable or invalid input
    REJECTED = 3  # the target answered 4xx (or 3xx): Vendasta would not resend
    GAVE_UP = 4  # 5xx, timeouts or broken connections until attempts ran out
    TIMEOUT = 5  # a single request took longer than allowed
    UNREACHABLE = 6  # connection refused, DNS or TLS failure
    UNAUTHORIZED = 7  # 401 from the API, or the token endpoint refused the assertion
    FORBIDDEN = 8  # 403: the token lacks the scope
    NOT_FOUND = 9  # 404: no such record in this environment
    CREDENTIALS = 10  # the service-account credentials file is missing or unusable
    INTERRUPTED = 130  # Ctrl-C


class VwhError(Exception):
    """Base of every error a user can cause; `str(err)` is the one-line message."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class UsageError(VwhError):
    """An option value that cannot work (bad URL, bad header, bad range)."""

    exit_code = ExitCode.USAGE


class InputError(VwhError):
    """A file or stream given by the user that cannot be read or parsed."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The project file (vwh.toml) cannot be used: not TOML, an unknown key, a bad value."""


class StoreError(VwhError):
    """The capture store cannot be opened, written or read."""


class ServerError(VwhError):
    """The local listener cannot start (port in use, address not available)."""


class NotFoundError(VwhError):
    """A kept request, or an API record, that does not exist."""

    exit_code = ExitCode.NOT_FOUND


class RejectedError(VwhError):
    exit_code = ExitCode.REJECTED


class GaveUpError(VwhError):
    exit_code = ExitCode.GAVE_UP


class TimeoutError_(VwhError):
    """A request that took longer than the allowed time (named to not shadow the builtin)."""

    exit_code = ExitCode.TIMEOUT


class UnreachableError(VwhError):
    exit_code = ExitCode.UNREACHABLE


class UnauthorizedError(VwhError):
    exit_code = ExitCode.UNAUTHORIZED


class ForbiddenError(VwhError):
    exit_code = ExitCode.FORBIDDEN


class CredentialsError(VwhError):
    exit_code = ExitCode.CREDENTIALS
