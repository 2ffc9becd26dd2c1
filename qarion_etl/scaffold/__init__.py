"""The example project written by ``qarion-etl init`` (the same files as the repository's)."""

from __future__ import annotations

from pathlib import Path

from qarion_etl.errors import UsageError

FILES = ("qarion-etl.toml", "flows/data_pipeline.toml", "data/orders.csv")
_HERE = Path(__file__).parent


def write_scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy the example project into ``directory``; refuses to overwrite unless ``force``."""
    existing = [directory / f for f in FILES if (directory / f).exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(str(p) for p in existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "use --force to overwrite"
        )
    written = []
    for name in FILES:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((_HERE / name).read_bytes())
        written.append(target)
    return written
