"""qarion-etl: run ETL flows written in TOML, with XCom between tasks.

Nothing heavy is imported here: the command line must start fast. The library logs
through ``logging`` (logger ``qarion_etl``; ``qarion_etl.run.logs`` writes the records
and gives that logger a ``NullHandler``): configure logging to see them.
"""

__version__ = "0.1.0"
