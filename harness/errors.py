"""The error types (benchcore.errors) and the exit code the CLI gives each kind.

README "Exit codes": 0 ok, 1 some cells failed / regression, 2 usage or config error, 130 interrupted.
"""

from __future__ import annotations

from benchcore.errors import (
    BenchError,
    ConfigError,
    DatasetError,
    DeviceBusyError,
    DeviceError,
    DeviceTimeoutError,
    ModelError,
    StoreError,
    UnknownDeviceKindError,
)

EXIT_OK = 0
EXIT_CELLS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Error kind -> exit code; the most specific class listed wins, anything else is a usage error.
EXIT_CODES: dict[type[BaseException], int] = {DeviceError: EXIT_CELLS_FAILED}


def exit_code_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_USAGE


__all__ = [
    "EXIT_CELLS_FAILED", "EXIT_CODES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
    "BenchError",
    "ConfigError",
    "DatasetError",
    "DeviceBusyError",
    "DeviceError",
    "DeviceTimeoutError",
    "ModelError",
    "StoreError",
    "UnknownDeviceKindError",
    "exit_code_for",
]
