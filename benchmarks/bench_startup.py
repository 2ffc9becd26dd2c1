"""Start-up cost of the command line, beside the floor set by importing typer."""

from __future__ import annotations

import sys

from benchmarks.common import ROOT, header, qarion_cmd, ratio_line, time_process


def main() -> None:
    header("start-up")
    typer_only, _ = time_process([sys.executable, "-c", "import typer"], repeat=7)
    helped, _ = time_process([*qarion_cmd(), "--help"], repeat=7)
    print(
        ratio_line("qarion-etl --help vs python -c 'import typer'", helped, typer_only, target=1.5)
    )
    validated, _ = time_process([*qarion_cmd(), "validate"], repeat=7, cwd=ROOT)
    print(ratio_line("qarion-etl validate (example) vs import typer", validated, typer_only))


if __name__ == "__main__":
    main()
