"""README, "Coming from dbt": its worked example runs as written.

The two flow files and the commands marked ``<!-- dbt-example: … -->`` are taken verbatim,
put into a copy of the shop project (its data and macros), and the commands are run in
their order on each engine; the ``orders`` model must then hold, per order, what the
payments file says was paid, worked out in Python.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.conftest import unique_name
from tests.e2e import shopkit
from tests.helpers import ROOT, cli
from tests.runkit import query, table

BLOCK = re.compile(r"<!-- dbt-example: (\w+) -->\n```\w+\n(.*?)```\n", re.S)


def _blocks() -> dict[str, str]:
    return dict(BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def _commands(block: str) -> list[list[str]]:
    """Each ``qarion-etl …`` line of a shell block, without its comment."""
    lines = (shlex.split(line, comments=True) for line in block.splitlines())
    return [argv[1:] for argv in lines if argv and argv[0] == "qarion-etl"]


def test_the_readme_marks_the_example() -> None:
    blocks = _blocks()
    assert list(blocks) == ["seeds", "shop", "commands"]
    assert len(_commands(blocks["commands"])) == 4


def test_the_example_runs_as_written(tmp_path: Path, engine_url: str) -> None:
    blocks = _blocks()
    suffix = "_" + unique_name("r")
    flows = {"seeds.toml": blocks["seeds"], "shop.toml": blocks["shop"]}
    project = shopkit.copy_shop(tmp_path / "shop", engine_url, suffix, flows)
    try:
        for argv in _commands(blocks["commands"]):
            result = cli(*argv, project=project)
            assert result.exit_code == 0, (argv, result.stdout + result.stderr)
        orders = table(engine_url, shopkit.namespaces(suffix)[1], "orders")
        rows = query(engine_url, f"SELECT order_id, customer_id, status, amount FROM {orders}")
    finally:
        shopkit.drop_shop(engine_url, suffix)
    expected = {k: (o[0], o[1], o[3], o[-1]) for k, o in shopkit.expected_orders().items()}
    assert shopkit.keyed(rows) == expected
