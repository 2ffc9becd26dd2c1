"""Spark's connection source: one Spark session per warehouse, seen as ``Connection`` objects.

``[engine] url`` is ``sc://host:port`` for a Spark Connect server (the ``pyspark-client``
of the ``spark`` extra is enough), or ``spark://local[2]`` for a session in this process
(the full ``pyspark`` and Java; its catalog is a Derby metastore in ``.qarion/spark`` and
its tables are in ``spark-warehouse``, both beside the project file). Options follow the
Spark Connect form, ``sc://host:15002/;table_format=delta;token=…``: ``table_format``
(``parquet``, ``delta``, ``iceberg``) and ``local_files`` (``read``: Spark reads the input
files at their paths on this machine, the default for local mode and a server on this
machine; ``send``: the checked reader sends their rows) are qarion-etl's, the others go
to the Spark Connect client.

The session is made on first use and shared by the connections of the source (Spark
Connect sessions take statements from several threads). A ``SparkConnection`` runs
statements with ``spark.sql`` (``?`` parameters as ``args``); ``begin()`` is no
transaction (Spark has none), and ``cancel()`` interrupts the operations the connection
started, which carry its own tag (``addTag`` is per thread: a connection is used by the
thread that opened it). A ``SELECT`` runs when its rows are read: ``keys()`` only asks
for the schema.
"""

from __future__ import annotations

import logging
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.db.connection import DriverResult
from qarion_etl.db.statements import StatementLog, run_recorded
from qarion_etl.errors import ConfigError, MissingExtra

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from qarion_etl.db.engines.base import Dialect


class SparkSource:
    """Connections to one Spark warehouse (``db.service.ConnectionSource``).

    Args:
        url: the URL as configured (for messages).
        target: ``sc://host:port`` or a local master (``local[2]``), read from ``url``.
        options: the URL's options for the Spark Connect client (``token`` …).
        dialect: the Spark dialect of the URL's ``table_format`` and file access.
        root: the project folder (local mode keeps its catalog and tables there).
    """

    native = False

    def __init__(
        self, url: str, target: str, options: dict[str, str], dialect: Dialect, root: Path | None
    ) -> None:
        self.url = url
        self.target = target
        self._client_options = options
        self.dialect = dialect
        self._root = root or Path.cwd()
        self._lock = threading.Lock()
        self._spark: Any = None

    @property
    def dbapi(self) -> Any:
        return None  # no DB-API module: errors are pyspark's

    # --- the session ---------------------------------------------------------------------
    def session(self) -> Any:
        """The Spark session, made on first use."""
        with self._lock:
            if self._spark is None:
                self._spark = self._open()
            return self._spark

    def _open(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pyspark about pandas versions
            try:
                from pyspark.sql import SparkSession
            except ImportError as exc:
                raise MissingExtra("spark", "pyspark", "a Spark warehouse") from exc
            # pyspark logs every error it raises to stderr as JSON; the run reports it.
            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            if self.target.lower().startswith("sc://"):
                spark = _remote(SparkSession, self.target, self._client_options)
            else:
                spark = _local(SparkSession, self.target, self._root)
        # Errors without the JVM's stack trace: the message is the driver's whole error.
        for key in (
            "spark.sql.pyspark.jvmStacktrace.enabled",
            "spark.sql.connect.serverStacktrace.enabled",
        ):
            spark.conf.set(key, "false")
        return spark

    # --- connections ---------------------------------------------------------------------
    def connect(self) -> SparkConnection:
        return SparkConnection(self.session(), self.dialect)

    def dedicated(self) -> SparkConnection:
        return self.connect()

    # --- catalog -------------------------------------------------------------------------
    def table_names(self, conn: Any, schema: str | None = None) -> list[str]:
        where = f" IN {self.dialect.quote(schema)}" if schema else ""
        try:
            rows = conn.exec_driver_sql(f"SHOW TABLES{where}").fetchall()
        except Exception as exc:
            if self.dialect.error_kind(exc) == "catalog":  # no such database yet
                return []
            raise
        return [str(r[1]) for r in rows if not r[2]]  # namespace, tableName, isTemporary

    def has_table(self, conn: Any, name: str, schema: str | None = None) -> bool:
        # The session catalog keeps names in lower case.
        return name.lower() in {n.lower() for n in self.table_names(conn, schema)}

    def primary_key(self, conn: Any, name: str) -> list[str]:
        return []  # Spark tables declare no keys

    def create_tables(self, specs: list[Any]) -> None:
        raise ConfigError(
            "Spark holds datasets only: keep [metadata] (runs, batches and XComs) in SQLite, "
            "PostgreSQL or MariaDB"
        )

    # --- errors --------------------------------------------------------------------------
    def is_database_error(self, exc: BaseException) -> bool:
        return type(exc).__module__.split(".")[0] in ("pyspark", "grpc")

    def connection_lost(self, exc: BaseException) -> bool:
        return self.dialect.error_kind(exc) == "lost_connection"

    def connect_errors(self) -> tuple[type[BaseException], ...]:
        from pyspark.errors import PySparkException

        return (PySparkException,)

    def sqlalchemy_engine(self) -> Engine:
        raise ConfigError("Spark is reached through Spark Connect, not SQLAlchemy")

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            spark, self._spark = self._spark, None
        if spark is not None and self.target.lower().startswith("sc://"):
            try:
                spark.stop()  # releases the server's session; a local one lives on
            except Exception:  # the server is gone already
                pass

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._spark = None


def _remote(session_class: Any, target: str, options: dict[str, str]) -> Any:
    from pyspark.sql.connect.client.retries import DefaultPolicy

    url = target + "/" + "".join(f";{k}={v}" for k, v in options.items())
    spark = session_class.builder.remote(url).create()
    # About three seconds of retries before a server counts as unreachable (the client's
    # own default waits ten minutes).
    policy = DefaultPolicy(
        max_retries=5, initial_backoff=100, backoff_multiplier=2.0, max_backoff=2000
    )
    spark.client.set_retry_policies([policy])
    spark.version  # noqa: B018  (reaches the server now: unreachable is StoreUnavailable)
    return spark


def _local(session_class: Any, master: str, root: Path) -> Any:
    """A session in this process: its metastore and tables under the project folder, no UI."""
    import os

    state = root / ".qarion" / "spark"
    state.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the driver's ports: this machine only
    metastore = f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true"
    spark = (
        session_class.builder.master(master)
        .appName("qarion-etl")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.warehouse.dir", str(root / "spark-warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL", metastore)
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={state}")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.showConsoleProgress", "false")
        .enableHiveSupport()
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")  # the run reports what failed
    return spark


class FrameCursor:
    """The rows of one statement, a Spark DataFrame read the way a DB-API cursor is read
    (``connection.DriverResult`` reads it): a query runs when its rows are first fetched."""

    rowcount = -1  # Spark does not say how many rows a command changed

    def __init__(self, frame: Any) -> None:
        self._frame = frame
        self._columns: list[str] | None = None
        self._rows: Iterator[tuple[Any, ...]] | None = None

    @property
    def description(self) -> list[tuple[str]] | None:
        if self._columns is None:
            self._columns = list(self._frame.columns)  # the schema only: nothing runs
        return [(c,) for c in self._columns] or None

    def _iter(self) -> Iterator[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = (tuple(r) for r in self._frame.toLocalIterator())
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._rows is None:  # one row asked for: LIMIT 1, not the whole result
            head = self._frame.head(1)
            self._rows = iter(())
            return tuple(head[0]) if head else None
        return next(self._rows, None)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return list(islice(self._iter(), size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = iter(())
            return [tuple(r) for r in self._frame.collect()]
        return list(self._rows)

    def close(self) -> None:
        self._rows = iter(())


class SparkConnection:
    """Statements on the shared Spark session, tagged so that ``cancel()`` stops only them."""

    cancellable = True

    def __init__(self, spark: Any, dialect: Dialect) -> None:
        self._spark = spark
        self.dialect = dialect
        self._tag = f"qarion-{uuid.uuid4().hex[:12]}"
        self._owner = threading.get_ident()
        spark.addTag(self._tag)  # operations of this thread on the session carry it

    #: Set by ``DatabaseService.connect``: where this connection reports its statements.
    statement_log: StatementLog | None = None

    @property
    def raw(self) -> Any:
        """The Spark session (``createDataFrame``, ``interruptTag``)."""
        return self._spark

    def cancel(self) -> None:
        self._spark.interruptTag(self._tag)

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> DriverResult:
        log = self.statement_log
        if log is not None and log.sink is not None:
            result: DriverResult = run_recorded(log, sql, params, lambda: self._exec(sql, params))
            return result
        return self._exec(sql, params)

    def _exec(self, sql: str, params: Sequence[Any] | None) -> DriverResult:
        frame = self._spark.sql(sql, args=list(params)) if params else self._spark.sql(sql)
        return DriverResult(FrameCursor(frame), close=True)

    @contextmanager
    def begin(self) -> Iterator[SparkConnection]:
        """No transaction: Spark has none (writes are staged and swapped instead)."""
        yield self

    def close(self) -> None:
        if threading.get_ident() == self._owner:
            try:
                self._spark.removeTag(self._tag)
            except Exception:  # the session is gone
                pass

    def __enter__(self) -> SparkConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Arrow types of the checked values of each schema type (decimals and timestamps go as
#: text and are cast by Spark: no rounding or time zone on the way).
_ARROW = {
    "string": "string",
    "integer": "int64",
    "float": "float64",
    "boolean": "bool_",
    "date": "date32",
}


def insert_frame(
    spark: Any,
    dialect: Dialect,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert ``rows`` into ``table`` as one Arrow table: one Spark job."""
    import pyarrow as pa

    types = dict(spark.table(table).dtypes)  # name -> Spark SQL type, by the table's schema
    arrays = []
    for i, name in enumerate(columns):
        arrow_type = _arrow_type(pa, types.get(name, "string"))
        text = arrow_type == pa.string()
        arrays.append(pa.array([_plain(r[i], text) for r in rows], type=arrow_type))
    view = f"_qrows_{uuid.uuid4().hex[:12]}"
    names = [f"c{i}" for i in range(len(columns))]
    frame = spark.createDataFrame(pa.Table.from_arrays(arrays, names=names))
    frame.createOrReplaceTempView(view)
    q = dialect.quote
    casts = ", ".join(
        f"CAST({q(f'c{i}')} AS {types.get(name, 'string')})" for i, name in enumerate(columns)
    )
    try:
        spark.sql(
            f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) SELECT {casts} FROM {q(view)}"
        )
    finally:
        spark.catalog.dropTempView(view)


def _arrow_type(pa: Any, spark_type: str) -> Any:
    name = {"bigint": "integer", "double": "float", "boolean": "boolean", "date": "date"}.get(
        spark_type.lower()
    )
    return getattr(pa, _ARROW[name])() if name else pa.string()


def _plain(value: Any, text: bool) -> Any:
    """A checked value as Arrow takes it for its column: text for a text column (decimals
    and timestamps go as text too)."""
    import datetime as dt

    if value is None or not text or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)
