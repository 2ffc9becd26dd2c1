"""XCom: small values that tasks push and pull, in Python or inside SQL templates.

Public API::

    from qarion_etl.xcom import XComService, XComValueType, BaseXCom
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

Importing this package is cheap: it loads no database driver, SQLAlchemy, boto3 or
Jinja. The database backend imports SQLAlchemy when it is first used.
"""

from __future__ import annotations

from qarion_etl.xcom.base import BaseXCom, StoredValue
from qarion_etl.xcom.records import XComEntry, XComQuery, XComRecord
from qarion_etl.xcom.service import MISSING, XComService
from qarion_etl.xcom.values import XComValueType

__all__ = [
    "BaseXCom",
    "MISSING",
    "StoredValue",
    "XComEntry",
    "XComQuery",
    "XComRecord",
    "XComService",
    "XComValueType",
]
