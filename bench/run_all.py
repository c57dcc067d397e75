"""Run every benchmark in bench/, one after another (`make bench`).

Each prints its figures beside the baseline it measured in the same run.
They need a few Debian tools: smtp-source (postfix), wrk, curl, valgrind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = {"smtp-source": "postfix", "wrk": "wrk", "curl": "curl", "callgrind_control": "valgrind"}


def main() -> int:
    missing = [f"{tool} (apt-get install {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
