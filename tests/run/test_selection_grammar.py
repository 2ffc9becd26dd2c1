"""``--select``/``--exclude``/``--selector``: dbt's grammar, and a reference it must agree with.

The unit tests pin each form on one small flow. The property test compares
``select_tasks`` with ``_reference`` below on random flows and random selector strings:
the reference parses with one regular expression, matches every name with ``fnmatchcase``
and finds ancestors and descendants by scanning every edge again until nothing changes,
so that it is plainly right rather than fast.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.definitions.dag import task_graph, topological_order
from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.errors import UsageError
from qarion_etl.run.selection import expand, parse_criterion, select_tasks


def make_flow(tasks: list[dict], tags: tuple[str, ...] = ()) -> Flow:
    """A flow of ``TaskSpec(**t)``; the flow's tags go first in each task's, as the parser does."""
    specs = tuple(
        TaskSpec(
            **{**t, "tags": tuple(dict.fromkeys((*tags, *t.get("tags", ()))))},
        )
        for t in tasks
    )
    return Flow(id="f", path=Path("f.toml"), tags=tags, tasks=specs)


#        ingest_orders ──(orders_landing)──> calc_stats ──┐
#              └──(orders_landing)──> audit               ├──> join_all ──> publish
# ingest_customers ──(customers_landing)──> calc_customers┘
FLOW = make_flow(
    [
        {"id": "ingest_orders", "type": "ingestion", "target_dataset_id": "orders_landing",
         "tags": ("nightly",)},
        {"id": "ingest_customers", "type": "ingestion", "target_dataset_id": "customers_landing",
         "tags": ("hourly",)},
        {"id": "calc_stats", "type": "transformation", "source_dataset_id": "orders_landing",
         "target_dataset_id": "orders_stats", "tags": ("nightly", "finance")},
        {"id": "calc_customers", "type": "transformation",
         "source_dataset_id": "customers_landing", "target_dataset_id": "customer_stats"},
        {"id": "audit", "type": "transformation", "source_dataset_id": "orders_landing"},
        {"id": "join_all", "type": "transformation", "dependencies": ("calc_stats", "calc_customers"),
         "target_dataset_id": "report"},
        {"id": "publish", "type": "transformation", "dependencies": ("join_all",)},
    ],
    tags=("core",),
)  # fmt: skip
GRAPH = task_graph(FLOW)
ORDER = topological_order(GRAPH, FLOW)
ALL = set(FLOW.task_ids)


def sel(*select: str, exclude: tuple[str, ...] = (), **kw: object) -> set[str]:
    chosen = select_tasks(GRAPH, ORDER, list(select), list(exclude), flow=FLOW, **kw)  # type: ignore[arg-type]
    assert chosen == [t for t in ORDER if t in chosen]
    return set(chosen)


def test_a_task_and_wildcards() -> None:
    assert sel("publish") == {"publish"}
    assert sel("calc*") == {"calc_stats", "calc_customers"}
    assert sel("ingest_??????") == {"ingest_orders"}
    assert sel("*") == sel() == ALL


def test_ancestors_descendants_and_depth() -> None:
    assert sel("+calc_stats") == {"calc_stats", "ingest_orders"}
    assert sel("ingest_orders+") == {"ingest_orders", "calc_stats", "audit", "join_all", "publish"}
    assert sel("1+publish") == {"publish", "join_all"}
    assert sel("2+publish") == {"publish", "join_all", "calc_stats", "calc_customers"}
    assert sel("ingest_orders+1") == {"ingest_orders", "calc_stats", "audit"}
    assert sel("0+publish") == sel("publish+0") == {"publish"}
    assert sel("+calc_stats+") == {"ingest_orders", "calc_stats", "join_all", "publish"}
    assert sel("1+join_all+1") == {"calc_stats", "calc_customers", "join_all", "publish"}


def test_at_takes_descendants_and_all_their_ancestors() -> None:
    assert sel("@calc_customers") == ALL - {"audit"}
    assert sel("@audit") == {"audit", "ingest_orders"}
    assert sel("@+audit") == sel("@audit")


def test_methods_tag_type_dataset() -> None:
    assert sel("tag:nightly") == {"ingest_orders", "calc_stats"}
    assert sel("tag:core") == ALL  # the flow's tags are every task's
    assert sel("tag:night*") == {"ingest_orders", "calc_stats"}
    assert sel("type:ingestion") == {"ingest_orders", "ingest_customers"}
    assert sel("type:trans*") == ALL - {"ingest_orders", "ingest_customers"}
    assert sel("dataset:orders_landing") == {"ingest_orders", "calc_stats", "audit"}
    assert sel("dataset:report") == {"join_all"}
    assert sel("dataset:customer*") == {"ingest_customers", "calc_customers"}


def test_graph_operators_apply_to_methods() -> None:
    assert sel("+tag:finance") == {"calc_stats", "ingest_orders"}
    assert sel("tag:hourly+") == {"ingest_customers", "calc_customers", "join_all", "publish"}
    assert sel("tag:hourly+1") == {"ingest_customers", "calc_customers"}
    assert sel("@dataset:report") == {"join_all", "publish"} | sel("+join_all")


def test_space_and_repetition_unite_and_comma_intersects() -> None:
    assert sel("tag:nightly,type:ingestion") == {"ingest_orders"}
    assert sel("publish audit") == sel("publish", "audit") == {"publish", "audit"}
    assert sel("tag:nightly,type:ingestion tag:hourly") == {"ingest_orders", "ingest_customers"}
    assert sel("ingest_orders+,tag:nightly") == {"ingest_orders", "calc_stats"}
    assert sel("+publish,dataset:orders_landing") == {"ingest_orders", "calc_stats"}


def test_exclude_takes_the_same_grammar() -> None:
    assert sel(exclude=("tag:core,type:transformation",)) == {"ingest_orders", "ingest_customers"}
    assert sel("ingest_orders+", exclude=("publish", "join_all+")) == {
        "ingest_orders",
        "calc_stats",
        "audit",
    }


def test_an_empty_selection_is_an_error() -> None:
    with pytest.raises(UsageError, match="the selection is empty"):
        sel("tag:nightly,tag:hourly")
    with pytest.raises(UsageError, match="the selection is empty"):
        sel("+publish", exclude=("@calc_customers",))


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("calc_stat", "--select calc_stat: no task 'calc_stat' in this flow (did you mean 'calc_stats'?)"),
        ("+calc_stat+", "--select +calc_stat+: no task 'calc_stat' in this flow (did you mean 'calc_stats'?)"),
        ("nope*", "--select nope*: no task matches 'nope*' in this flow"),
        ("tag:nitely", "--select tag:nitely: no task has tag 'nitely' in this flow (did you mean 'nightly'?)"),
        ("tag:x*", "--select tag:x*: no task has a tag matching 'x*' in this flow"),
        ("type:ingest", "--select type:ingest: no task of type 'ingest' in this flow (did you mean 'ingestion'?)"),
        ("dataset:orders_landin", "--select dataset:orders_landin: no task writes or reads dataset"
         " 'orders_landin' in this flow (did you mean 'orders_landing'?)"),
        ("tga:nightly", "--select tga:nightly: unknown selector method 'tga' (did you mean 'tag'?)"
         " (known: tag, type, dataset, or a task id)"),
        ("foo:bar", "--select foo:bar: unknown selector method 'foo' (known: tag, type, dataset, or a task id)"),
        ("tag:", "--select tag:: nothing after 'tag:'"),
        ("+", "--select +: no task name"),
        ("2+", "--select 2+: no task name"),
        ("@publish+", "--select @publish+: '@' and a '+' after the name cannot be used together"),
        ("publish,,audit", "--select publish,,audit: an empty criterion around ','"),
        ("publish,", "--select publish,: an empty criterion around ','"),
    ],
)  # fmt: skip
def test_what_matches_nothing_is_named_with_a_did_you_mean(criterion: str, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        sel(criterion)
    assert str(exc.value) == message


def test_every_criterion_of_an_intersection_is_checked() -> None:
    with pytest.raises(UsageError, match="no task 'publsh'.*did you mean 'publish'"):
        sel("tag:hourly,tag:finance,publsh")


def test_exclude_errors_name_exclude() -> None:
    with pytest.raises(UsageError, match=r"^--exclude audti: no task 'audti'.*'audit'"):
        sel(exclude=("audti",))


def test_named_selectors_unite_with_select_and_exclude_still_applies() -> None:
    selectors = {"nightly": ("tag:nightly,type:ingestion",), "two": ("publish", "audit")}
    assert sel(selector="nightly", selectors=selectors) == {"ingest_orders"}
    assert sel("publish", selector="nightly", selectors=selectors) == {"ingest_orders", "publish"}
    assert sel(selector="two", selectors=selectors, exclude=("audit",)) == {"publish"}
    with pytest.raises(UsageError) as exc:
        sel(selector="nigthly", selectors=selectors)
    assert str(exc.value) == (
        "--selector nigthly: no selector 'nigthly' in [selectors] of the configuration"
        " (did you mean 'nightly'?) (known: nightly, two)"
    )
    with pytest.raises(UsageError, match="no selector 'x'"):
        sel(selector="x")
    with pytest.raises(UsageError, match=r"^--selector bad \(pubish\): no task 'pubish'"):
        sel(selector="bad", selectors={"bad": ("pubish",)})


def test_without_the_flow_the_graph_node_specs_are_read() -> None:
    """``graph --select`` and ``ls --select`` pass only the graph."""
    assert set(select_tasks(GRAPH, ORDER, ["tag:nightly,type:ingestion"])) == {"ingest_orders"}
    assert expand(GRAPH, ["dataset:orders_landing"]) == {"ingest_orders", "calc_stats", "audit"}


def test_parse_criterion() -> None:
    c = parse_criterion("2+tag:night*+3")
    assert (c.method, c.value, c.parents, c.parents_depth, c.children, c.children_depth) == (
        "tag",
        "night*",
        True,
        2,
        True,
        3,
    )
    assert parse_criterion("+x").parents_depth is None
    assert parse_criterion("@x").childrens_parents
    assert parse_criterion("9" * 5000 + "+x").parents_depth is None  # more than any flow's depth


def test_a_thousand_task_flow() -> None:
    """Every form on a 1,000-task chain with side branches (speed: see benchmarks/)."""
    tasks = [
        {"id": f"t{i}", "type": "transformation", "dependencies": (f"t{i - 1}",) if i else (),
         "tags": ("even",) if i % 2 == 0 else ()}
        for i in range(1000)
    ]  # fmt: skip
    flow = make_flow(tasks)
    graph = task_graph(flow)
    order = topological_order(graph, flow)
    chosen = select_tasks(graph, order, ["@t500", "tag:even,t9*", "3+t20+2"], flow=flow)
    assert len(chosen) == 1000
    assert select_tasks(graph, order, ["t1+,5+t10"], flow=flow) == [f"t{i}" for i in range(5, 11)]


# --- the property test ---------------------------------------------------------------

_CRITERION = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?:(?P<method>[^:]*):)?(?P<value>.*?)(?:\+(?P<down>\d*))?$")  # fmt: skip
ERROR = "UsageError"


def _reference(flow: Flow, select: list[str], exclude: list[str]) -> set[str] | str:
    """What dbt's grammar selects in ``flow``, computed the slow and obvious way."""
    tasks = {t.id: t for t in flow.tasks}
    writer = {t.target_dataset_id: t.id for t in flow.tasks if t.target_dataset_id}
    edges = {(d, t.id) for t in flow.tasks for d in t.dependencies}
    edges |= {
        (writer[t.source_dataset_id], t.id)
        for t in flow.tasks
        if t.source_dataset_id in writer and writer[t.source_dataset_id] != t.id
    }

    def reach(start: set[str], depth: int | None, upward: bool) -> set[str]:
        found, rounds = set(start), 0
        while depth is None or rounds < depth:
            more = {a if upward else b for a, b in edges if (b if upward else a) in found}
            if more <= found:
                break
            found |= more
            rounds += 1
        return found

    def matches(task: TaskSpec, method: str, value: str) -> bool:
        if method == "":
            return fnmatchcase(task.id, value)
        if method == "tag":
            return any(fnmatchcase(tag, value) for tag in task.tags)
        if method == "type":
            return fnmatchcase(task.type, value)
        names = [task.source_dataset_id, task.target_dataset_id]
        return any(n is not None and fnmatchcase(n, value) for n in names)

    def criterion(text: str) -> set[str]:
        m = _CRITERION.match(text)
        assert m is not None
        method = m["method"] or ""
        if (
            (m["at"] and m["down"] is not None)
            or m["method"] is not None
            and method
            not in (
                "tag",
                "type",
                "dataset",
            )
        ):
            raise UsageError(text)
        if not m["value"]:
            raise UsageError(text)
        start = {tid for tid, t in tasks.items() if matches(t, method, m["value"])}
        if not start:
            raise UsageError(text)
        if m["at"]:
            return reach(reach(start, None, upward=False), None, upward=True)
        out = set(start)
        if m["up"] is not None:
            out |= reach(start, int(m["up"]) if m["up"] else None, upward=True)
        if m["down"] is not None:
            out |= reach(start, int(m["down"]) if m["down"] else None, upward=False)
        return out

    def union(values: list[str]) -> set[str]:
        out: set[str] = set()
        for expression in " ".join(values).split():
            parts = [criterion(p) if p else _raise(p) for p in expression.split(",")]
            out |= set.intersection(*parts)
        return out

    try:
        chosen = union(select) if " ".join(select).split() else set(tasks)
        chosen -= union(exclude)
    except UsageError:
        return ERROR
    return chosen or ERROR


def _raise(text: str) -> set[str]:
    raise UsageError(text)


IDS = ["a", "ab", "abc", "b", "calc", "calc_x", "load", "z1"]
TAGS = ["nightly", "night", "hourly", "finance"]
TYPES = ["ingestion", "transformation"]


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=len(IDS), unique=True))
    tasks: list[dict] = []
    for i, tid in enumerate(ids):
        targets = [t["target_dataset_id"] for t in tasks if t.get("target_dataset_id")]
        tasks.append(
            {
                "id": tid,
                "type": draw(st.sampled_from(TYPES)),
                "tags": tuple(draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))),
                "dependencies": tuple(
                    draw(st.lists(st.sampled_from(ids[:i]), max_size=3, unique=True)) if i else []
                ),
                "target_dataset_id": draw(st.sampled_from([None, f"ds_{tid}"])),
                "source_dataset_id": draw(st.sampled_from([None, "outside", *targets])),
            }
        )
    flow_tags = tuple(draw(st.lists(st.sampled_from(["core", "nightly"]), max_size=1)))
    return make_flow(tasks, tags=flow_tags)


def _odds(n: int) -> st.SearchStrategy[bool]:
    """True ``n`` times in ``n + 1`` (``st.integers`` would favour its bounds)."""
    return st.sampled_from([True] * n + [False])


@st.composite
def criteria(draw: st.DrawFn, flow: Flow) -> str:
    """Mostly names the flow has (so most selections select something), sometimes not."""
    method = draw(st.sampled_from(["", "", "", "tag:", "type:", "dataset:"]))
    real = {
        "": flow.task_ids,
        "tag:": sorted({tag for t in flow.tasks for tag in t.tags}),
        "type:": sorted({t.type for t in flow.tasks}),
        "dataset:": sorted(
            {d for t in flow.tasks for d in (t.source_dataset_id, t.target_dataset_id) if d}
        ),
    }[method]
    other = {
        "": [*IDS, "*", "calc*", "a?", "[ab]*"],
        "tag:": [*TAGS, "core", "night*", "*"],
        "type:": [*TYPES, "ing*"],
        "dataset:": [*(f"ds_{i}" for i in IDS), "outside", "ds_a*"],
    }[method]
    if real and draw(_odds(5)):
        value = draw(st.sampled_from(real))
    else:
        value = draw(st.sampled_from(other))
    if not draw(_odds(30)):  # now and then a criterion that cannot parse
        method, value = draw(st.sampled_from([("foo:", "x"), ("", ""), ("tag:", ""), ("", ",")]))
    before = draw(st.sampled_from(["", "", "+", "1+", "2+", "0+", "@", "@+"]))
    after = draw(st.sampled_from(["", "", "", "+", "+1", "+2", "+0"]))
    if before.startswith("@") and draw(_odds(5)):
        after = ""  # '@' with a '+' after is an error; only now and then
    return f"{before}{method}{value}{after}"


@st.composite
def cases(draw: st.DrawFn) -> tuple[Flow, list[str], list[str]]:
    flow = draw(flows())
    expressions = st.lists(criteria(flow), min_size=1, max_size=3).map(",".join)
    values = st.lists(expressions, min_size=1, max_size=2).map(" ".join)
    select = draw(st.lists(values | st.just(""), min_size=1, max_size=2))
    exclude = draw(st.lists(values, max_size=1))
    return flow, select, exclude


@settings(max_examples=500, deadline=None)
@given(case=cases())
def test_select_tasks_agrees_with_the_reference(
    case: tuple[Flow, list[str], list[str]],
) -> None:
    flow, select, exclude = case
    graph = task_graph(flow)
    order = topological_order(graph, flow)
    want = _reference(flow, select, exclude)
    for kw in ({"flow": flow}, {}):
        try:
            chosen = select_tasks(graph, order, select, exclude, **kw)  # type: ignore[arg-type]
        except UsageError:
            got: set[str] | str = ERROR
        else:
            assert chosen == [t for t in order if t in chosen]
            got = set(chosen)
        assert got == want, (select, exclude)
