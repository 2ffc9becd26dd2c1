"""SQL templates render in Jinja's sandbox: no Python internals, every documented name kept.

A flow file may come from any hand in a repository. ``{{ cycler.__init__.__globals__.os
.system(...) }}`` fails as a template error with its file and line (``validate`` and
``render`` exit 2, a ``run`` fails the task) and executes nothing; every function, filter
and variable of the README's "Template context" renders as before.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.db.dialects import dialect_named
from qarion_etl.errors import TemplateError
from qarion_etl.run.rendering import PullResolver, render_sql, template_context
from tests.helpers import cli, make_project, write_flow

PAYLOAD = """{{ cycler.__init__.__globals__.os.system("touch pwned") }}"""

FLOW = '''\
id = "evil"

[[tasks]]
id = "ok"
type = "transformation"
target_dataset_id = "ok"
[tasks.config]
sql = "SELECT 1 AS a"

[[tasks]]
id = "attack"
type = "transformation"
dependencies = ["ok"]
[tasks.config]
sql = """
SELECT 1 AS a,
  {sql}
"""
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "p", example=False)
    monkeypatch.chdir(root)  # where "touch pwned" would write
    return root


def _flow(project: Path, sql: str) -> None:
    write_flow(project, "evil", FLOW.format(sql=sql))


def test_render_and_validate_refuse_the_payload_with_file_and_line(project: Path) -> None:
    _flow(project, PAYLOAD)
    for command in (("render", "evil", "attack"), ("validate", "evil")):
        result = cli(*command, project=project)
        assert result.exit_code == 2, result.output
        assert "flows/evil.toml:17: task 'attack'" in result.stderr
        assert "'__globals__'" in result.stderr and "sandbox" in result.stderr
        assert "Traceback" not in result.output
    assert not (project / "pwned").exists()


def test_a_run_fails_the_task_when_only_rendering_finds_the_payload(project: Path) -> None:
    # A name built while rendering: no check before the run can see it, the sandbox does.
    _flow(project, """{{ cycler | attr('__in' ~ 'it__') }}""")
    assert cli("validate", "evil", project=project).exit_code == 0
    result = cli("run", "evil", "--json", project=project)
    assert result.exit_code == 1, result.output
    import json

    tasks = {t["task_id"]: t for t in json.loads(result.stdout)["tasks"]}
    assert tasks["ok"]["status"] == "success"
    assert tasks["attack"]["status"] == "failed"
    error = tasks["attack"]["error"]
    assert error.startswith("flows/evil.toml:17: task 'attack': SQL template: ")
    assert "unsafe" in error and tasks["attack"]["tries"] == 1  # not retried
    assert not (project / "pwned").exists()


#: Ways out of a template into Python; each would create the file ``pwned``.
ESCAPES = [
    PAYLOAD,
    "{{ lipsum.__globals__['os'].system('touch pwned') }}",
    "{{ var.__globals__['__builtins__']['__import__']('os').system('touch pwned') }}",
    "{{ xcom_pull.__self__.__init__.__globals__ }}",
    "{{ ti.xcom_pull.__func__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ (cycler | attr('__init__')).__globals__ }}",
    "{{ '{0.__class__}'.format(ds) }}",
    "{{ self.__init__.__globals__ }}",
    "{{ params.update({'a': 1}) }}",
    "{{ params.__setitem__('a', 1) }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{{ range.__call__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_no_way_out_of_the_sandbox(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateError) as caught:
        render_sql(source, _context(), dialect_named("duckdb"))
    assert caught.value.line == 1
    assert not (tmp_path / "pwned").exists()


def _context(
    given: dict[tuple[str, str], Any] | None = None,
    variables: dict[str, Any] | None = None,
    batch_id: int = 7,
    dag_run_id: str = "r1",
    ds: str = "2024-01-15",
) -> dict[str, Any]:
    resolver = PullResolver("f", dag_run_id, None, given=given or {})
    return template_context(
        flow_id="f",
        task_id="t",
        dag_run_id=dag_run_id,
        batch_id=batch_id,
        ds=ds,
        source_dataset='"ns"."src"',
        target_dataset='"ns"."dst"',
        variables=variables or {},
        resolver=resolver,
    )


SCALARS = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20).filter(lambda s: "\x00" not in s),  # sql_literal refuses a NUL
    st.booleans(),
)
NAMES = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)


def _sql(value: Any) -> str:
    """How ``{{ value }}`` renders: booleans as SQL booleans, anything else as ``str``."""
    return ("TRUE" if value else "FALSE") if isinstance(value, bool) else str(value)


@settings(max_examples=60, deadline=None)
@given(
    value=SCALARS,
    other=SCALARS,
    field=NAMES,
    text=st.text(max_size=20).filter(lambda s: "\x00" not in s),
    column=st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s),
    batch_id=st.integers(0, 10**9),
    dag_run_id=st.text(
        alphabet=st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1, max_size=20
    ),
    day=st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)),
)
def test_documented_template_features_render_unchanged(
    value: Any,
    other: Any,
    field: str,
    text: str,
    column: str,
    batch_id: int,
    dag_run_id: str,
    day: dt.date,
) -> None:
    duck = dialect_named("duckdb")
    given = {("up", "k"): value, ("up2", "k"): other, ("up", "obj"): {field: other, "n": [value]}}
    ds = day.isoformat()
    context = _context(given, {"name": text, "col": column}, batch_id, dag_run_id, ds)
    cases = {
        "{{ xcom_pull('up', key='k') }}": _sql(value),
        "{{ ti.xcom_pull('up', key='k') }}": _sql(value),
        "{{ task_instance.xcom_pull(task_ids='up', key='k') }}": _sql(value),
        f"{{{{ xcom_pull('up', key='obj')['{field}'] }}}}": _sql(other),
        f"{{{{ xcom_pull('up', key='obj').{field} }}}}": _sql(other),
        "{{ xcom_pull('up', key='obj').get('n')[0] }}": _sql(value),
        "{{ xcom_pull(['up', 'up2'], key='k')[1] }}": _sql(other),
        "{{ xcom_pull('missing', key='k', default=42) }}": "42",
        "{{ source_dataset }} {{ target_dataset }}": '"ns"."src" "ns"."dst"',
        "{{ batch_id }}|{{ dag_run_id }}|{{ run_id }}|{{ flow_id }}|{{ task_id }}": (
            f"{batch_id}|{dag_run_id}|{dag_run_id}|f|t"
        ),
        "{{ ds }} {{ ds_nodash }}": f"{ds} {ds.replace('-', '')}",
        "{{ ti.task_id }} {{ ti.dag_run_id }} {{ ti.batch_id }}": f"t {dag_run_id} {batch_id}",
        "{{ var('name') }}|{{ var('unset', 'dflt') }}|{{ params.name }}": f"{text}|dflt|{text}",
        "{{ var('name') | sql_literal }}": duck.literal(text),
        "{{ var('col') | sql_identifier }}": duck.quote(column),
        "{{ xcom_pull('up', key='k') | sql_literal }}": duck.literal(value),
        "{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}": "0,1,2",
        "{{ [1, 2] | join(',') }} {{ 'a' | upper }} {{ xcom_pull('up', key='obj').n | length }}": "1,2 A 1",
        "{% set x = {'a': batch_id} %}{{ x.a }} {{ x.items() | list | length }}": f"{batch_id} 1",
    }
    for source, expected in cases.items():
        assert render_sql(source, context, duck) == expected, source


def test_none_objects_and_lists_are_still_refused() -> None:
    context = _context({("up", "obj"): {"a": 1}, ("up", "none"): None})
    for source in (
        "{{ xcom_pull('up', key='obj') }}",
        "{{ xcom_pull('up', key='none') }}",
        "{{ [1] }}",
    ):
        with pytest.raises(TemplateError, match="pull one field|rendered None"):
            render_sql(source, context, dialect_named("duckdb"))


def test_render_still_answers_pulls_from_xcom_values(project: Path) -> None:
    _flow(project, "{{ xcom_pull('ok', key='a') | sql_literal }} AS b, '{{ ti.task_id }}' AS c")
    result = cli("render", "evil", "attack", "--xcom", "ok.a=it's", project=project)
    assert result.exit_code == 0, result.output
    assert "'it''s' AS b, 'attack' AS c" in result.stdout
    assert os.listdir(project).count("pwned") == 0


def test_a_field_with_one_leading_underscore_still_validates_and_renders(project: Path) -> None:
    _flow(project, "{{ xcom_pull('ok')['_loaded_at'] }} AS b")
    assert cli("validate", "evil", project=project).exit_code == 0
    result = cli("render", "evil", "attack", "--xcom", 'ok={"_loaded_at": 5}', project=project)
    assert result.exit_code == 0, result.output
    assert "5 AS b" in result.stdout
