# SPDX-License-Identifier: Apache-2.0
"""Test-case collection: TTTv1 forwards append what they ran (mesh, dtypes, shapes, model, mode) to CSV files.

As the TTTv2 design proposal describes: each module appends one deduplicated row per distinct call to
``<module>_1d_performance.csv`` in ``$TTTV1_CASES_DIR`` (default: the working directory), so
``run_tttv1_simple_demos.sh`` leaves behind the cases the TTTv2 tests hard-code.
"""

import csv
import os
from pathlib import Path

CASES_DIR_ENV = "TTTV1_CASES_DIR"
_seen: dict[Path, set[tuple]] = {}


def record_case(name: str, header: tuple[str, ...], row: tuple) -> None:
    """Append ``row`` under ``header`` to ``<name>.csv`` unless that file already holds it."""
    path = Path(os.environ.get(CASES_DIR_ENV, ".")) / f"{name}.csv"
    if path not in _seen:
        _seen[path] = set()
        if path.exists():
            with open(path, newline="") as f:
                _seen[path] = {tuple(r) for r in list(csv.reader(f))[1:]}
    row = tuple(str(value) for value in row)
    if row in _seen[path]:
        return
    _seen[path].add(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(header)
        writer.writerow(row)
