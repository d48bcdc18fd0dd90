"""The `bench` entry point (`bench = harness.cli:main`, and `python -m harness`).

`bench --version` is answered here, before typer, rich or any command module is imported: it costs an
interpreter start and nothing more. Everything else goes to the typer app in harness/cli/commands.py, which
`bench --help` loads with its command modules but none of the libraries the commands use.

Exit codes: 0 every cell ok; 1 some cells failed; 2 usage or config error; 130 interrupted.
"""

from __future__ import annotations

import sys

from harness import __version__

#: The program name completion scripts and usage lines use, also when started as `python -m harness`.
PROG_NAME = "bench"


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # the typer app's --version prints the same line
        sys.stdout.write(f"{PROG_NAME} {__version__}\n")
        sys.exit(0)
    from harness.cli.commands import main as app_main

    app_main()

