"""Talking to databases: one ``DatabaseService`` per database, one ``Dialect`` per engine.

``service.DatabaseService`` picks a connection source once (``native``: the sqlite3 and
duckdb drivers; ``sqlalchemy_source``: everything else) and delegates to it; both hand out
connections that follow the ``connection.Connection`` protocol. ``dialects`` holds every
fact about an engine (quoting, types, transactions, upserts, swaps, bulk loads), ``urls``
reads database URLs, ``schema`` declares and creates the metadata tables and
``materialize`` writes datasets atomically. This package imports nothing above it.
"""
