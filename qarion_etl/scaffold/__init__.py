"""The example project written by ``qarion-etl init`` (the same files as the repository's)."""

from __future__ import annotations

from pathlib import Path

from qarion_etl.errors import FilesExist

FILES = ("qarion-etl.toml", "flows/data_pipeline.toml", "data/orders.csv")
_HERE = Path(__file__).parent


def write_scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy the example project into ``directory``; refuses to overwrite unless ``force``."""
    existing = [directory / f for f in FILES if (directory / f).exists()]
    if existing and not force:
        raise FilesExist(str(p) for p in existing)
    written = []
    for name in FILES:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((_HERE / name).read_bytes())
        written.append(target)
    if _ignore(directory / ".gitignore"):
        written.append(directory / ".gitignore")
    return written


def _ignore(path: Path) -> bool:
    """Add the lines of the scaffold's ``gitignore`` that ``path`` lacks; whether it changed.

    A ``.gitignore`` the project already has is kept: only the missing lines are appended.
    """
    wanted = (_HERE / "gitignore").read_text(encoding="utf-8").splitlines()
    have = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in wanted if line.startswith("#") is False and line not in have]
    if not missing:
        return False
    if not have:
        path.write_text("\n".join(wanted) + "\n", encoding="utf-8")
        return True
    text = path.read_text(encoding="utf-8")
    lead = "" if text.endswith("\n") else "\n"
    path.write_text(text + lead + "\n".join(["# qarion-etl", *missing]) + "\n", encoding="utf-8")
    return True
