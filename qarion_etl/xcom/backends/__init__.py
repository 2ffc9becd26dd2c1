"""Built-in XCom backends. Nothing is imported here: each backend module imports its own
client (SQLAlchemy, boto3) when it is used. Names and classes are in
:data:`qarion_etl.xcom.registry.BUILTIN_BACKENDS`.
"""
