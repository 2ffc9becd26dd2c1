"""Object stores for offloaded XCom values: an S3 bucket or a local folder.

A blob store keeps opaque bytes under names chosen by the caller and answers with a
location (``s3://bucket/key`` or ``file:relative/path``) that it alone can follow:
a location outside its bucket or folder is refused, never guessed at.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from qarion_etl.errors import ConfigError, StoreUnavailable, clip, closest
from qarion_etl.xcom.backends._s3_client import error_code

STORE_TYPES = ("local_file", "s3")


class BlobStore(Protocol):
    """Where offloaded values live."""

    kind: str

    def put(self, name: str, data: bytes) -> str:
        """Store ``data`` under ``name``; returns its location."""
        ...

    def get(self, location: str) -> bytes | None:
        """The bytes at ``location``, or ``None`` if they are gone."""
        ...

    def delete(self, locations: Sequence[str]) -> None:
        """Remove the blobs at ``locations`` (missing ones are ignored)."""
        ...

    def describe(self) -> str:
        """Where the store keeps blobs, for ``doctor``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class S3Blobs:
    """Blobs as objects under ``prefix`` in a bucket (options as for the ``s3`` backend)."""

    kind = "s3"

    def __init__(self, **options: Any) -> None:
        # Each store's module loads when an offload store of its kind is configured: a
        # database backend without offload (every `xcom get`) needs neither.
        from qarion_etl.xcom.backends.s3 import S3XComBackend

        options.setdefault("prefix", "xcom-offload")
        self._s3 = S3XComBackend(**options)
        self.bucket = self._s3.bucket
        self.prefix = self._s3.prefix

    def put(self, name: str, data: bytes) -> str:
        key = f"{self.prefix}/{name}" if self.prefix else name
        try:
            self._s3.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"
            )
        except Exception as exc:
            raise self._s3._error(exc, "offload put") from None
        return f"s3://{self.bucket}/{key}"

    def _key(self, location: str) -> str:
        head = f"s3://{self.bucket}/"
        key = location[len(head) :] if location.startswith(head) else ""
        if not key or (self.prefix and not key.startswith(self.prefix + "/")):
            raise StoreUnavailable(
                f"offloaded XCom at {clip(location, 120)} is outside s3://{self.bucket}/"
                f"{self.prefix} (offload_to changed?)"
            )
        return key

    def get(self, location: str) -> bytes | None:
        key = self._key(location)
        try:
            return bytes(self._s3.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._s3._error(exc, "offload get") from None

    def delete(self, locations: Sequence[str]) -> None:
        keys = [self._key(loc) for loc in locations]
        for start in range(0, len(keys), 1000):
            objects = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self._s3.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except Exception as exc:
                raise self._s3._error(exc, "offload delete") from None

    def describe(self) -> str:
        return self._s3.describe()

    def close(self) -> None:
        self._s3.close()


class FileBlobs:
    """Blobs as files under ``base_path`` (relative to the project root), written atomically."""

    kind = "local_file"

    def __init__(
        self,
        *,
        base_path: str | os.PathLike[str] = ".qarion/xcom-offload",
        root: str | os.PathLike[str] | None = None,
        fsync: bool = True,
    ) -> None:
        path = Path(base_path).expanduser()
        if not path.is_absolute():
            path = Path(root or Path.cwd()) / path
        self.base_path = path.resolve()
        self.fsync = fsync

    def _path(self, location: str) -> Path:
        rel = location.removeprefix("file:")
        path = (self.base_path / rel).resolve()
        if not location.startswith("file:") or not path.is_relative_to(self.base_path):
            raise StoreUnavailable(
                f"offloaded XCom at {clip(location, 120)} is outside {self.base_path}"
            )
        return path

    def put(self, name: str, data: bytes) -> str:
        from qarion_etl.xcom.backends.local_file import write_atomic  # as S3Blobs does

        target = self.base_path / name
        write_atomic(target, data, fsync=self.fsync)
        return f"file:{name}"

    def get(self, location: str) -> bytes | None:
        try:
            return self._path(location).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read offloaded XCom {location}: {exc}") from exc

    def delete(self, locations: Sequence[str]) -> None:
        for location in locations:
            path = self._path(location)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreUnavailable(f"cannot remove offloaded XCom {path}: {exc}") from exc
            parent = path.parent
            while parent != self.base_path and parent.is_relative_to(self.base_path):
                try:
                    parent.rmdir()  # no empty folders left behind
                except OSError:
                    break
                parent = parent.parent

    def describe(self) -> str:
        return f"folder {self.base_path}"

    def close(self) -> None:
        """Nothing to release."""


def build_blob_store(offload_to: Any, *, root: str | os.PathLike[str] | None = None) -> BlobStore:
    """The store an ``offload_to`` table names.

    Raises:
        ConfigError: not a table, unknown ``type``, or options the store does not take.
    """
    where = "[xcom].backend_config.offload_to"
    if not isinstance(offload_to, Mapping):
        raise ConfigError(f'{where} must be a table such as {{type = "s3", bucket = "…"}}')
    options = dict(offload_to)
    kind = options.pop("type", None)
    if kind not in STORE_TYPES:
        close = closest(str(kind), STORE_TYPES, cutoff=0.4)
        hint = f"; did you mean '{close}'?" if close else ""
        raise ConfigError(
            f"{where}.type must be one of {', '.join(STORE_TYPES)}, not {kind!r}{hint}"
        )
    try:
        if kind == "s3":
            return S3Blobs(**options)
        return FileBlobs(root=root, **options)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
