"""`just bench WHAT`: run AeroFS side by side with its peers and print ratios.

Each benchmark lives in its own module here (`bench/<what>_bench.py`) with a `main(argv) -> int`;
`all` runs them one after the other. Data is generated with a fixed seed under `bench/data/`
(ignored by git) and reused between runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHES = {
    "csv": "csv_bench",
    "csv-split": "csv_split_probe",
    "words": "words_bench",
    "logs": "logs_bench",
    "exif": "exif_bench",
    "server": "server_bench",
}


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "all"
    sys.path.insert(0, str(Path(__file__).parent))
    names = list(BENCHES) if what == "all" else [what]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from: all, {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"\n##### bench {name} #####", flush=True)
        module = importlib.import_module(BENCHES[name])
        status |= module.main(argv[1:])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
