"""Talking to databases: one ``DatabaseService`` per database, one ``Dialect`` per engine.

``service.DatabaseService`` picks a connection source once (``native``: the sqlite3 and
duckdb drivers; ``sqlalchemy_source``: everything else) and delegates to it; both hand out
connections that follow the ``connection.Connection`` protocol. ``engines`` has one module
per engine, whose ``Dialect`` holds every fact about it and does what it does its own way
(quoting, types, transactions, upserts, swaps, loads, error kinds); ``dialects`` keeps
their published import path. ``loading`` describes what a load is given, ``urls`` reads
database URLs, ``schema`` declares and creates the metadata tables and ``materialize``
writes datasets atomically. This package imports nothing above it.
"""
