"""The ``s3`` XCom backend: one JSON object per value in an S3 (or S3-compatible) bucket.

Key layout, readable in any S3 browser::

    <prefix>/<flow_id>/run=<dag_run_id or _>/batch=<batch_id or _>/<task_id>/<key>.json

Every id is percent-encoded (see ``_naming``): ``/``, NUL and unicode cannot break the
layout, a literal ``_`` id is written ``%5F``, and ids whose encoding passes 160
characters become ``<head>~<sha256>``. The object is a JSON document with the identity,
``value_type``, ``size``, ``pushed_ns`` and the stored text under ``value``; the same
fields (and a short preview) are object metadata, so listings read headers (``HEAD``)
and never download values.

Lookups list the narrowest prefix the query allows (a pull with flow, run, batch, task
and key is one ``GET``); among several matches the newest ``pushed_ns`` wins. Listings
paginate; ``clear`` deletes in ``DeleteObjects`` batches of 1,000. Timeouts and retries
are bounded (5 s connect, 10 s read, 3 attempts) so a CI step never hangs, and every
failure is a ``StoreUnavailable`` (exit 3) naming the bucket and the operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

from qarion_etl.errors import ConfigError, StoreUnavailable
from qarion_etl.xcom.backends import _naming as naming
from qarion_etl.xcom.backends._s3_client import (
    build_client,
    check_credentials,
    error_code,
    store_error,
)
from qarion_etl.xcom.base import BaseXCom
from qarion_etl.xcom.records import XComQuery, XComRecord, newest_first

_PREVIEW_META_CHARS = 64
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_DELETE_BATCH = 1000


class S3XComBackend(BaseXCom):
    """XComs as JSON objects in an S3 bucket.

    Args:
        db_service: accepted for the common constructor shape and ignored.
        bucket: the bucket (it must exist).
        prefix: key prefix of every object; default ``xcom``.
        credentials: a table (``aws_access_key_id``, ``aws_secret_access_key``,
            ``aws_session_token``, ``region_name``, ``profile_name``), usually a
            ``"${credential:NAME}"`` reference; ``None`` uses boto3's default chain
            (environment, profile, instance role).
        region_name: the bucket's region (else the one in ``credentials``, else boto3's).
        endpoint_url: an S3-compatible endpoint (MinIO, Ceph, R2, moto …).
        connect_timeout, read_timeout: seconds per request.
        max_attempts: tries per request, the first included.
        max_workers: parallel requests for listings, pulls of many tasks and batches.
        addressing_style: ``path`` or ``virtual``; default ``path`` with ``endpoint_url``.
        namespace: accepted and ignored.
    """

    def __init__(
        self,
        db_service: Any = None,
        *,
        bucket: str | None = None,
        prefix: str = "xcom",
        credentials: Mapping[str, Any] | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_attempts: int = 3,
        max_workers: int = 16,
        addressing_style: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(None, namespace=namespace)
        if not bucket or not isinstance(bucket, str) or "/" in bucket:
            raise ConfigError(
                "[xcom].backend_config: the s3 backend needs 'bucket', a bucket name "
                f"without '/' (got {bucket!r})"
            )
        self.bucket = bucket
        self.prefix = str(prefix or "").strip("/")
        if len(self.prefix) > 200:
            raise ConfigError("[xcom].backend_config.prefix must be at most 200 characters")
        self.endpoint_url = endpoint_url
        creds = check_credentials(credentials)
        self._secrets = [v for k, v in creds.items() if k != "region_name"]
        self._settings: dict[str, Any] = {
            "credentials": creds,
            "region_name": region_name,
            "endpoint_url": endpoint_url,
            "connect_timeout": float(connect_timeout),
            "read_timeout": float(read_timeout),
            "max_attempts": max(int(max_attempts), 1),
            "max_pool_connections": max(int(max_workers), 1) + 4,
            "addressing_style": addressing_style,
        }
        self.max_workers = max(int(max_workers), 1)
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self.region_name = self.client.meta.region_name  # built now: bad options fail at start-up

    # --- plumbing ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client (built on first use; never touches the network)."""
        if self._client is None:
            try:
                self._client = build_client(**self._settings)
            except Exception as exc:
                raise self._error(exc, "configure client") from None
        return self._client

    def _error(self, exc: BaseException, operation: str) -> StoreUnavailable:
        return store_error(
            exc,
            bucket=self.bucket,
            operation=operation,
            endpoint_url=self.endpoint_url,
            secrets=self._secrets,
        )

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(i) for i in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="qarion-s3")
        return list(self._pool.map(fn, items))

    def describe(self) -> str:
        """Where values are stored, for ``doctor`` and ``config show``."""
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        extra = [f"endpoint {self.endpoint_url}"] if self.endpoint_url else []
        if self.region_name:
            extra.append(f"region {self.region_name}")
        return f"{where} ({', '.join(extra)})" if extra else where

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = state["_pool"] = None
        return state

    def close(self) -> None:
        """Close the HTTP connections and the request threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- key layout --------------------------------------------------------------------
    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def object_key(
        self, flow_id: str, task_id: str, key: str, run: str | None, batch: int | None
    ) -> str:
        """The object key of one identity."""
        return (
            f"{self._root()}{naming.encode_segment(flow_id)}/run={naming.encode_optional(run)}"
            f"/batch={naming.encode_optional(batch)}/{naming.encode_segment(task_id)}"
            f"/{naming.encode_segment(key)}.json"
        )

    def _list_prefix(self, q: XComQuery) -> str:
        parts = [self._root()]
        if q.flow_id is None:
            return parts[0]
        parts.append(naming.encode_segment(q.flow_id) + "/")
        if q.dag_run_id is None:
            return "".join(parts)
        parts.append(f"run={naming.encode_optional(q.dag_run_id)}/")
        if q.batch_id is None:
            return "".join(parts)
        parts.append(f"batch={naming.encode_optional(q.batch_id)}/")
        if q.task_id is not None:
            parts.append(naming.encode_segment(q.task_id) + "/")
        return "".join(parts)

    def _segments(self, object_key: str) -> tuple[str, str, str, str, str] | None:
        """(flow, run, batch, task, key) segments of one of our keys, else ``None``."""
        root = self._root()
        if not object_key.startswith(root) or not object_key.endswith(".json"):
            return None
        parts = object_key[len(root) : -len(".json")].split("/")
        if len(parts) != 5 or not parts[1].startswith("run=") or not parts[2].startswith("batch="):
            return None
        return parts[0], parts[1][4:], parts[2][6:], parts[3], parts[4]

    def _wanted(self, q: XComQuery) -> tuple[str | None, ...]:
        return (
            None if q.flow_id is None else naming.encode_segment(q.flow_id),
            None if q.dag_run_id is None else naming.encode_optional(q.dag_run_id),
            None if q.batch_id is None else naming.encode_optional(q.batch_id),
            None if q.task_id is None else naming.encode_segment(q.task_id),
            None if q.key is None else naming.encode_segment(q.key),
        )

    def _keys(self, q: XComQuery) -> Iterator[str]:
        """Our object keys that match ``q``, from paginated listings of the narrowest prefix."""
        wanted = self._wanted(q)
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._list_prefix(q)):
                for obj in page.get("Contents", ()):
                    segs = self._segments(obj["Key"])
                    if segs and all(w is None or w == s for w, s in zip(wanted, segs, strict=True)):
                        yield obj["Key"]
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise self._error(exc, "list") from None

    # --- objects -----------------------------------------------------------------------
    def _put(self, record: XComRecord) -> None:
        text = record.value if isinstance(record.value, str) else str(record.value)
        doc = {
            "flow_id": record.flow_id,
            "dag_run_id": record.dag_run_id,
            "batch_id": record.batch_id,
            "task_id": record.task_id,
            "key": record.key,
            "value_type": record.value_type,
            "size": record.size,
            "pushed_ns": record.pushed_ns,
            "value": text,
        }
        meta = {
            "value-type": record.value_type,
            "size": str(record.size),
            "pushed-ns": str(record.pushed_ns),
            "preview": quote(text[:_PREVIEW_META_CHARS], safe="{}[]:,\"'-_.+=()/@#*!?<>;&|"),
            "truncated": "1" if len(text) > _PREVIEW_META_CHARS else "0",
        }
        key = self.object_key(
            record.flow_id, record.task_id, record.key, record.dag_run_id, record.batch_id
        )
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                Metadata=meta,
            )
        except Exception as exc:
            raise self._error(exc, "put") from None

    def _get(self, key: str) -> XComRecord | None:
        """The full record at ``key`` (``None`` if it is gone)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, "get") from None
        doc = json.loads(body.decode("utf-8", "surrogatepass"))
        return XComRecord(
            doc["flow_id"], doc["task_id"], doc["key"], doc["value"], doc["value_type"],
            doc["dag_run_id"], doc["batch_id"], doc["size"], doc["pushed_ns"],
        )  # fmt: skip

    def _head(self, key: str) -> XComRecord | None:
        """The light record at ``key``: ids from the key, the rest from metadata."""
        segs = self._segments(key)
        assert segs is not None
        flow, run, batch, task, xkey = segs
        if any(naming.is_hashed(s) for s in (flow, run, task, xkey)):
            record = self._get(key)  # a hashed id can only be read from the object
            if record is not None:
                text = str(record.value)
                record.truncated = len(text) > _PREVIEW_META_CHARS
                record.value = text[:_PREVIEW_META_CHARS]
            return record
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
        except Exception as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, "head") from None
        return XComRecord(
            naming.decode_segment(flow) or flow,
            naming.decode_segment(task) or task,
            naming.decode_segment(xkey) or xkey,
            unquote(meta.get("preview", "")),
            meta.get("value-type", "json"),
            None if run == naming.MISSING else naming.decode_segment(run),
            None if batch == naming.MISSING else int(batch),
            int(meta.get("size", 0)),
            int(meta.get("pushed-ns", 0)),
            truncated=meta.get("truncated") == "1",
        )

    def _newest(self, keys: Sequence[str]) -> XComRecord | None:
        """The full record of the newest of ``keys``."""
        if len(keys) == 1:
            return self._get(keys[0])
        heads = [(k, r) for k, r in zip(keys, self._map(self._head, keys), strict=True) if r]
        for key, _ in sorted(heads, key=lambda kr: kr[1].pushed_ns, reverse=True):
            record = self._get(key)
            if record is not None:
                return record
        return None

    # --- storage primitives ------------------------------------------------------------
    def set_records(self, records: Sequence[XComRecord]) -> None:
        self._map(self._put, list(records))

    def get_record(self, query: XComQuery) -> XComRecord | None:
        q = query
        if None not in (q.flow_id, q.task_id, q.key, q.dag_run_id, q.batch_id):
            return self._get(self.object_key(q.flow_id, q.task_id, q.key, q.dag_run_id, q.batch_id))  # type: ignore[arg-type]
        return self._newest(list(self._keys(query)))

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        tasks = list(dict.fromkeys(task_ids))
        if query.task_id is not None:
            tasks = [t for t in tasks if t == query.task_id]
        by_task: dict[str, list[str]] = {t: [] for t in tasks}
        if None in (query.flow_id, query.key, query.dag_run_id, query.batch_id):
            wanted = {naming.encode_segment(t): t for t in tasks}
            for key in self._keys(query):
                task = wanted.get(self._segments(key)[3])  # type: ignore[index]
                if task is not None:
                    by_task[task].append(key)
        else:
            for t in tasks:
                by_task[t].append(
                    self.object_key(query.flow_id, t, query.key, query.dag_run_id, query.batch_id)  # type: ignore[arg-type]
                )
        found = self._map(self._newest, [by_task[t] for t in tasks])
        return {t: r for t, r in zip(tasks, found, strict=True) if r is not None}

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int | None = 60
    ) -> list[XComRecord]:
        heads = [r for r in self._map(self._head, list(self._keys(query))) if r is not None]
        out = newest_first(heads)[:limit]
        for r in out:
            if r.truncated and (preview_chars is None or preview_chars > _PREVIEW_META_CHARS):
                full = self._get(
                    self.object_key(r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id)
                )
                r.value = str(full.value) if full else r.value
            text = str(r.value)
            if preview_chars is None:
                r.value, r.truncated = text, False
            else:
                r.truncated = r.truncated or len(text) > preview_chars
                r.value = text[:preview_chars]
        return out

    def count_records(self, query: XComQuery) -> int:
        """Counted from the bucket listing: no object is read."""
        return sum(1 for _ in self._keys(query))

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        keys = list(self._keys(query))
        if older_than_ns is not None:
            heads = self._map(self._head, keys)
            keys = [
                k for k, r in zip(keys, heads, strict=True) if r and r.pushed_ns < older_than_ns
            ]
        deleted = 0
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            try:
                out = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
                )
            except Exception as exc:
                raise self._error(exc, "delete") from None
            errors = out.get("Errors") or []
            if errors:
                code = errors[0].get("Code", "error")
                raise StoreUnavailable(
                    f"S3 XCom store: delete on bucket '{self.bucket}' failed for "
                    f"{len(errors)} object(s): {code}"
                )
            deleted += len(out.get("Deleted") or [])
        return deleted
