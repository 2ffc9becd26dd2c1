"""The ``local_file`` XCom backend: one JSON file per value under ``base_path``.

Layout::

    <base_path>/<flow_id>/<task_id>/<identity>.json

``flow_id`` and ``task_id`` are encoded by the rule in ``_naming`` (percent-encoding with
``.`` at the start, ``/``, ``\\``, NUL and unicode escaped; long ids become
``<head>~<sha256>``), and the file name is the record's sha256 identity, so no task id,
key or run id can write outside ``base_path`` or share a file with another identity, on
case-insensitive file systems too. Folders only group files: every lookup checks the
identity stored inside the file.

Each file is one JSON object: ``{"meta": {...}, "value": "<stored text>"}``. ``meta``
comes first and holds the identity, ``value_type``, ``size``, ``pushed_ns`` and a short
preview, so listings read the first few kilobytes of a file, never the whole value.

Writes go to a temporary file in the same folder, are flushed with ``fsync`` and renamed
over the old file (``os.replace``), so a crash never leaves a torn value and writers in
several processes never see each other's half-written files; the last rename wins.
``clear`` removes the files and then the folders it emptied.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qarion_etl.errors import StoreUnavailable
from qarion_etl.xcom.backends._naming import encode_segment
from qarion_etl.xcom.base import BaseXCom
from qarion_etl.xcom.records import XComQuery, XComRecord, identity_key, newest_first

DEFAULT_BASE_PATH = ".qarion/xcom"
_FIELDS = ("flow_id", "task_id", "key", "dag_run_id", "batch_id", "value_type", "size", "pushed_ns")
_PREVIEW_CHARS = 64
_HEAD_BYTES = 16384  # meta of the longest ids (4 x 250 chars of 4-byte UTF-8) fits
_TMP_PREFIX = ".tmp-"
_DECODER = json.JSONDecoder()


def _segment(name: str) -> str:
    return encode_segment(name, limit=120)


#: The fields of a stored record and the types each may hold.
_TYPES: dict[str, tuple[type, ...]] = {
    "flow_id": (str,), "task_id": (str,), "key": (str,), "value_type": (str,),
    "dag_run_id": (str, type(None)), "batch_id": (int, type(None)), "size": (int,),
    "pushed_ns": (int,),
}  # fmt: skip


def _record(meta: dict[str, Any], value: Any, truncated: bool = False) -> XComRecord:
    """The record of a file's ``meta``; ``TypeError`` when a field is not what we write."""
    for name, types in _TYPES.items():
        if not isinstance(meta[name], types) or isinstance(meta[name], bool):
            raise TypeError(f"field {name!r} is {type(meta[name]).__name__}")
    if not isinstance(value, str):
        raise TypeError(f"value is {type(value).__name__}")
    return XComRecord(
        meta["flow_id"], meta["task_id"], meta["key"], value, meta["value_type"],
        meta["dag_run_id"], meta["batch_id"], meta["size"], meta["pushed_ns"], truncated,
    )  # fmt: skip


class LocalFileXComBackend(BaseXCom):
    """XComs as JSON files in a folder.

    Args:
        db_service: accepted for the common constructor shape and ignored.
        base_path: the folder; relative paths are resolved against ``root``.
        root: the project root (``create_backend`` passes it); default the working folder.
        fsync: flush each file (and its folder) to disk before it becomes visible; turn
            off only for throw-away stores where speed matters more than crash safety.
        namespace: accepted and ignored.
    """

    def __init__(
        self,
        db_service: Any = None,
        *,
        base_path: str | os.PathLike[str] = DEFAULT_BASE_PATH,
        root: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        namespace: str | None = None,
    ) -> None:
        super().__init__(None, namespace=namespace)
        path = Path(base_path).expanduser()
        if not path.is_absolute():
            path = Path(root or Path.cwd()) / path
        self.base_path = path.resolve()
        self.fsync = bool(fsync)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_path={str(self.base_path)!r}>"

    def describe(self) -> str:
        """Where values are stored, for ``doctor``."""
        return f"folder {self.base_path}"

    # --- paths -------------------------------------------------------------------------
    def _task_dir(self, flow_id: str, task_id: str) -> Path:
        path = self.base_path / _segment(flow_id) / _segment(task_id)
        if path.parent.parent != self.base_path:  # cannot happen with encoded segments
            raise StoreUnavailable(f"refusing XCom path outside {self.base_path}: {path}")
        return path

    def _file(self, record: XComRecord) -> Path:
        return self._task_dir(record.flow_id, record.task_id) / f"{record.identity}.json"

    def _dirs(self, query: XComQuery) -> Iterator[Path]:
        if not self.base_path.is_dir():
            return
        if query.flow_id is not None:
            flows = [self.base_path / _segment(query.flow_id)]
        else:
            flows = [p for p in self.base_path.iterdir() if p.is_dir()]
        for flow_dir in flows:
            if query.task_id is not None:
                task_dir = flow_dir / _segment(query.task_id)
                if task_dir.is_dir():
                    yield task_dir
            elif flow_dir.is_dir():
                yield from (p for p in flow_dir.iterdir() if p.is_dir())

    def _files(self, query: XComQuery) -> Iterator[Path]:
        q = query
        if None not in (q.flow_id, q.task_id, q.key, q.dag_run_id, q.batch_id):
            ident = identity_key(q.flow_id, q.task_id, q.key, q.dag_run_id, q.batch_id)  # type: ignore[arg-type]
            yield self._task_dir(q.flow_id, q.task_id) / f"{ident}.json"  # type: ignore[arg-type]
            return
        for folder in self._dirs(query):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:  # removed by a concurrent clear
                continue
            for name in names:
                if name.endswith(".json") and not name.startswith(_TMP_PREFIX):
                    yield folder / name

    # --- reading -----------------------------------------------------------------------
    def _read(self, path: Path, *, light: bool = False) -> XComRecord | None:
        """The record in ``path`` (only its meta and preview when ``light``), ``None`` if gone."""
        try:
            with open(path, "rb") as fh:
                data = fh.read(_HEAD_BYTES) if light else fh.read()
                complete = not light or len(data) < _HEAD_BYTES
                if light and not complete and not data.startswith(b'{"meta": '):
                    data += fh.read()  # a file in the older flat form
                    complete = True
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read XCom file {path}: {exc}") from exc
        try:
            text = data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            if complete:
                raise StoreUnavailable(f"XCom file {path} is not UTF-8 text") from exc
            text = data[: exc.start].decode("utf-8", "surrogatepass")  # a character cut in two
        try:
            if not complete:
                meta, _ = _DECODER.raw_decode(text, len('{"meta": '))
                return _record(meta, meta.get("preview", ""), bool(meta.get("truncated")))
            doc = json.loads(text)
            if "meta" not in doc:  # the older flat form
                return _record(doc, doc["value"])
            return _record(doc["meta"], doc["value"])
        except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
            # Not a file this backend wrote: another program's JSON in the folder.
            raise StoreUnavailable(
                f"XCom file {path} is not an XCom document written by qarion-etl "
                f"({type(exc).__name__}): move it out of {self.base_path}"
            ) from None

    def _scan(self, query: XComQuery, *, light: bool = False) -> Iterator[tuple[Path, XComRecord]]:
        for path in self._files(query):
            record = self._read(path, light=light)
            if record is not None and query.matches(record):
                yield path, record

    # --- storage primitives ------------------------------------------------------------
    def set_records(self, records: Sequence[XComRecord]) -> None:
        for record in records:
            self._write(record)

    def _encode(self, record: XComRecord) -> bytes:
        text = record.value if isinstance(record.value, str) else str(record.value)
        meta: dict[str, Any] = {f: getattr(record, f) for f in _FIELDS}
        meta["preview"] = text[:_PREVIEW_CHARS]
        meta["truncated"] = len(text) > _PREVIEW_CHARS
        doc = {"meta": meta, "value": text}
        return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")

    def _write(self, record: XComRecord) -> None:
        write_atomic(self._file(record), self._encode(record), fsync=self.fsync)

    def get_record(self, query: XComQuery) -> XComRecord | None:
        found = newest_first([r for _, r in self._scan(query, light=True)])
        for light in found:  # newest first; read the full value of the winner only
            if not light.truncated:  # the head already held the whole value
                return light
            record = self._read(self._file(light))
            if record is not None and record.identity == light.identity:
                return record
        return None

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        out: dict[str, XComRecord] = {}
        for task_id in dict.fromkeys(task_ids):
            if query.task_id is not None and task_id != query.task_id:
                continue
            sub = XComQuery(query.flow_id, task_id, query.key, query.dag_run_id, query.batch_id)
            record = self.get_record(sub)
            if record is not None:
                out[task_id] = record
        return out

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int | None = 60
    ) -> list[XComRecord]:
        out = []
        for r in newest_first([r for _, r in self._scan(query, light=True)])[:limit]:
            if r.truncated and (preview_chars is None or preview_chars > _PREVIEW_CHARS):
                full = self._read(self._file(r))
                r.value = full.value if full is not None else r.value
            text = r.value if isinstance(r.value, str) else str(r.value)
            if preview_chars is None:
                r.value, r.truncated = text, False
            else:
                r.truncated = r.truncated or len(text) > preview_chars
                r.value = text[:preview_chars]
            out.append(r)
        return out

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        count = 0
        folders = set()
        for path, record in list(self._scan(query, light=True)):
            if older_than_ns is not None and record.pushed_ns >= older_than_ns:
                continue
            try:
                path.unlink()
                count += 1
            except FileNotFoundError:
                continue
            folders.add(path.parent)
        for folder in folders:  # no empty folders left behind (base_path itself stays)
            for empty in (folder, folder.parent):
                if empty == self.base_path:
                    break
                try:
                    empty.rmdir()
                except OSError:
                    break
        return count


def write_atomic(target: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``target`` so readers see the old file or the new one, never half.

    A temporary file in the same folder is written, flushed (``fsync``) and renamed over
    ``target``; the folder is created (again, if a concurrent clear removed it).

    Raises:
        StoreUnavailable: the file cannot be written.
    """
    folder = target.parent
    for attempt in range(5):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP_PREFIX, suffix=".part")
        except FileNotFoundError:  # a concurrent clear removed the folder: make it again
            if attempt == 4:
                raise StoreUnavailable(f"cannot create XCom folder {folder}") from None
            continue
        except OSError as exc:
            raise StoreUnavailable(f"cannot write XCom files under {folder}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise StoreUnavailable(f"cannot write XCom file {target}: {exc}") from exc
            raise
        if fsync:
            _fsync_dir(folder)
        return


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
