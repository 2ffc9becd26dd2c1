"""Running a flow: options in, a ``RunResult`` out.

``runner.FlowRunner`` validates the flow, picks the tasks (``selection``) and hands them
to ``execution.RunExecution``, which runs them against the warehouse, renders their SQL
(``rendering``), pushes their results to XCom, tells a ``reporting.Reporter`` what
happens and records every run and task instance (``history``). ``model`` holds the plain
data that crosses these modules and the command line.
"""
