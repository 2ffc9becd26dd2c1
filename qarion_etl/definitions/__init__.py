"""What the user wrote, read and checked: ``qarion-etl.toml`` and the flow files.

``config`` reads the project file (with ``interpolate`` for ``${env:…}`` and
``${credential:…}``), ``flow_parser`` a flow file into the models of ``flow``,
``task_types`` says what each task type accepts, ``dag`` and ``graph`` build and check the
task graph, ``templates`` parses SQL templates and ``validation`` puts every check
together. Nothing here connects to a database: this package never imports ``run``,
``db`` or ``cli``.
"""
