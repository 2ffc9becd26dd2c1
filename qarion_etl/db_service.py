"""The seed page's import path for ``DatabaseService`` (it lives in ``qarion_etl.db.service``).

::

    from qarion_etl.db_service import DatabaseService
"""

from qarion_etl.db.service import DatabaseService, create_engine, resolve_url
from qarion_etl.masking import mask_url

__all__ = ["DatabaseService", "create_engine", "mask_url", "resolve_url"]
