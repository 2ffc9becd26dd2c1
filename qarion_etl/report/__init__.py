"""Pictures of runs: a self-contained HTML report and the pages of the local web UI.

``data`` reads what a page shows (run history, SQL files, XComs in their light form),
``svg`` draws the task graph and the timeline of tries, ``html`` renders the page.
"""
