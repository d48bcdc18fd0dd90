"""Regenerate the example report committed under reports/example/ (HTML and Markdown only, kept small):
the README's default sweep, in a scratch directory, then its report.

    .venv/bin/python scripts/make_example_report.py [--iterations 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.report import make_report  # noqa: E402
from harness.store import Store  # noqa: E402

OUT = REPO / "reports" / "example"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-example-") as tmp:
        subprocess.run([sys.executable, "-m", "harness", "sweep", "--no-report", "--iterations", str(args.iterations),
                        "--repeats", str(args.repeats)], cwd=tmp, check=True)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store.open(url, create=False)
        run_id = store.latest_run_id()
        store.close()
        files = make_report([run_id], url, OUT, ("html", "md"), regenerate="python scripts/make_example_report.py")
    for path in (files.markdown, files.html):
        print(f"{path.relative_to(REPO)}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
