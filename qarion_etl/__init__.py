"""qarion-etl: run ETL flows written in TOML, with XCom between tasks.

Nothing heavy is imported here: the command line must start fast. The library logs
through ``logging`` (logger ``qarion_etl``) and adds no handler but a ``NullHandler``:
configure logging to see its records.
"""

import logging

__version__ = "0.1.0"

logging.getLogger("qarion_etl").addHandler(logging.NullHandler())
