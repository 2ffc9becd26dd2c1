"""The ``local_file`` XCom backend: one JSON file per value under ``base_path``.

Layout::

    <base_path>/<flow_id>/<task_id>/<identity>.json

``flow_id`` and ``task_id`` are percent-encoded (``.`` and ``/`` included, so no id can
name ``..`` or a sub-folder; long ids become a hash) and the file name is the sha256
identity, so nothing a task or key is called can write outside ``base_path``. Each file
holds the record's fields and the stored text; it is written to a temporary file in the
same folder and renamed over the old one, so readers never see half a value and two
writers of one identity leave one file. Meant for development and single machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qarion_etl.errors import StoreUnavailable
from qarion_etl.xcom.base import BaseXCom
from qarion_etl.xcom.records import XComQuery, XComRecord, newest_first

DEFAULT_BASE_PATH = ".qarion/xcom"
_FIELDS = ("flow_id", "task_id", "key", "dag_run_id", "batch_id", "value_type", "size", "pushed_ns")


def _segment(name: str) -> str:
    """A folder name for an id: reversible for short ids, a hash for long ones."""
    encoded = quote(name, safe="").replace(".", "%2E")
    if len(encoded) > 120:
        return "h-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded


class LocalFileXComBackend(BaseXCom):
    """XComs as JSON files in a folder.

    Args:
        db_service: accepted for the common constructor shape and ignored.
        base_path: the folder; relative paths are resolved against ``root``.
        root: the project root (``create_backend`` passes it); default the working folder.
        namespace: accepted and ignored.
    """

    def __init__(
        self,
        db_service: Any = None,
        *,
        base_path: str | os.PathLike[str] = DEFAULT_BASE_PATH,
        root: str | os.PathLike[str] | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(None, namespace=namespace)
        path = Path(base_path).expanduser()
        if not path.is_absolute():
            path = Path(root or Path.cwd()) / path
        self.base_path = path.resolve()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_path={str(self.base_path)!r}>"

    # --- paths -------------------------------------------------------------------------
    def _task_dir(self, flow_id: str, task_id: str) -> Path:
        path = self.base_path / _segment(flow_id) / _segment(task_id)
        if path.parent.parent != self.base_path:  # cannot happen with encoded segments
            raise StoreUnavailable(f"refusing XCom path outside {self.base_path}: {path}")
        return path

    def _dirs(self, query: XComQuery) -> Iterator[Path]:
        if not self.base_path.is_dir():
            return
        flows = (
            [self.base_path / _segment(query.flow_id)]
            if query.flow_id is not None
            else [p for p in self.base_path.iterdir() if p.is_dir()]
        )
        for flow_dir in flows:
            if query.task_id is not None:
                task_dir = flow_dir / _segment(query.task_id)
                if task_dir.is_dir():
                    yield task_dir
            elif flow_dir.is_dir():
                yield from (p for p in flow_dir.iterdir() if p.is_dir())

    def _read(self, path: Path) -> XComRecord | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:  # removed by a concurrent clear
            return None
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"cannot read XCom file {path}: {exc}") from exc
        return XComRecord(
            doc["flow_id"],
            doc["task_id"],
            doc["key"],
            doc["value"],
            doc["value_type"],
            doc["dag_run_id"],
            doc["batch_id"],
            doc["size"],
            doc["pushed_ns"],
        )

    def _scan(self, query: XComQuery) -> Iterator[tuple[Path, XComRecord]]:
        for folder in self._dirs(query):
            for path in folder.glob("*.json"):
                record = self._read(path)
                if record is not None and query.matches(record):
                    yield path, record

    # --- storage primitives ------------------------------------------------------------
    def set_records(self, records: Sequence[XComRecord]) -> None:
        for record in records:
            self._write(record)

    def _write(self, record: XComRecord) -> None:
        folder = self._task_dir(record.flow_id, record.task_id)
        doc: dict[str, Any] = {f: getattr(record, f) for f in _FIELDS}
        doc["value"] = record.value
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        for attempt in range(5):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
            except FileNotFoundError:  # a concurrent clear removed the folder: make it again
                if attempt == 4:
                    raise
                continue
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot write XCom files under {self.base_path}: {exc}"
                ) from exc
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, folder / f"{record.identity}.json")
                return
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise

    def get_record(self, query: XComQuery) -> XComRecord | None:
        found = newest_first([r for _, r in self._scan(query)])
        return found[0] if found else None

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        out: dict[str, XComRecord] = {}
        for task_id in dict.fromkeys(task_ids):
            sub = XComQuery(query.flow_id, task_id, query.key, query.dag_run_id, query.batch_id)
            record = self.get_record(sub)
            if record is not None:
                out[task_id] = record
        return out

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int = 60
    ) -> list[XComRecord]:
        out = []
        for r in newest_first([r for _, r in self._scan(query)])[:limit]:
            text = r.value if isinstance(r.value, str) else str(r.value)
            r.truncated = len(text) > preview_chars
            r.value = text[:preview_chars]
            out.append(r)
        return out

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        count = 0
        folders = set()
        for path, record in list(self._scan(query)):
            if older_than_ns is not None and record.pushed_ns >= older_than_ns:
                continue
            try:
                path.unlink()
                count += 1
            except FileNotFoundError:
                continue
            folders.add(path.parent)
        for folder in folders:  # no empty folders left behind
            for empty in (folder, folder.parent):
                try:
                    empty.rmdir()
                except OSError:
                    break
        return count
