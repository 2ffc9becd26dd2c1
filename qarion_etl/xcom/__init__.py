"""XCom: small values that tasks push and pull, in Python or inside SQL templates.

Public API::

    from qarion_etl.xcom import XComService, XComValueType, BaseXCom
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

The package: ``service`` (the API), ``base`` (the plugin interface), ``codec`` (a value to a
record and back, through the hooks), ``sql_store`` (the table ``BaseXCom`` stores in),
``values`` (the value types), ``records``, ``hooks`` (calling Airflow-style overrides),
``registry`` (``[xcom].backend`` to an object) and ``backends/``.

Importing this package is cheap: it loads no database driver, SQLAlchemy, boto3 or
Jinja. The database backend imports SQLAlchemy when it is first used.
"""

from __future__ import annotations

from qarion_etl.errors import XComNotFound, XComValueError
from qarion_etl.xcom.base import BaseXCom, StoredValue
from qarion_etl.xcom.records import XComEntry, XComQuery, XComRecord
from qarion_etl.xcom.service import MISSING, XComService
from qarion_etl.xcom.values import XComValueType

__all__ = [
    "BaseXCom",
    "MISSING",
    "StoredValue",
    "XComEntry",
    "XComNotFound",
    "XComQuery",
    "XComRecord",
    "XComService",
    "XComValueError",
    "XComValueType",
]
