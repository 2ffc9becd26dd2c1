"""qarion-etl: run ETL flows written in TOML, with XCom between tasks.

Nothing heavy is imported here: the command line must start fast.
"""

__version__ = "0.1.0"
