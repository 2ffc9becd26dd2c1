"""Hostile configuration and flow files: a clear error (exit 2) or a valid result, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qarion_etl.definitions.config import parse_config
from qarion_etl.definitions.flow_parser import load_flow
from qarion_etl.definitions.validation import validate_flow
from qarion_etl.errors import ConfigError, FlowValidationError
from tests.helpers import ROOT

SEED_FLOW = (ROOT / "flows" / "data_pipeline.toml").read_text()
SEED_CONFIG = (ROOT / "qarion-etl.toml").read_text()

toml_scalars = st.one_of(
    st.integers(),
    st.booleans(),
    st.text(max_size=30),
    st.floats(allow_nan=False),
    st.just([]),
    st.just({}),
)
keys = st.sampled_from(
    [
        "id",
        "name",
        "type",
        "namespace",
        "tasks",
        "input",
        "config",
        "sql",
        "path",
        "format",
        "dependencies",
        "retries",
        "columns",
        "primary_key",
        "backend",
        "xcom",
        "engine",
        "url",
        "metadata",
        "project",
        "flows_dir",
        "enabled",
        "backend_config",
        "max_value_bytes",
        "x",
        "\u00e9",
        "a b",
        "..",
        "'; DROP",
    ]
)


def _mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["delete", "duplicate", "truncate", "insert", "swap"]))
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        elif op == "insert":
            k = data.draw(keys)
            v = data.draw(toml_scalars)
            rendered = {True: "true", False: "false"}.get(v, None) if isinstance(v, bool) else None
            if rendered is None:
                rendered = (
                    repr(v).replace("'", '"')
                    if not isinstance(v, str)
                    else '"' + v.replace("\\", "").replace('"', "") + '"'
                )
            lines.insert(i, f"{k} = {rendered}")
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


settings_ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings_
@given(st.data())
def test_mutated_seed_flow(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(_mutate(SEED_FLOW, data))
    try:
        validate_flow(load_flow(path))
    except FlowValidationError as exc:
        assert exc.exit_code == 2
        assert str(exc)
        for p in exc.problems:
            assert p.line is None or p.line >= 1


@settings_
@given(st.data())
def test_mutated_seed_config(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "qarion-etl.toml"
    path.write_text(_mutate(SEED_CONFIG, data))
    try:
        parse_config(path, env={})
    except ConfigError as exc:
        assert exc.exit_code == 2 and str(exc)


@settings_
@given(st.binary(max_size=300))
def test_random_bytes_as_flow(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "flow.toml"
    path.write_bytes(blob)
    with pytest.raises(FlowValidationError):
        validate_flow(load_flow(path))


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return (
            '"'
            + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v)
            + '"'
        )
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"
    raise TypeError(v)


def _toml_doc(doc: dict) -> str:
    scalars = [f'"{k}" = {_toml_value(v)}' for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f'["{k}"]\n' + "\n".join(f'"{kk}" = {_toml_value(vv)}' for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(scalars) + "\n\n" + "\n\n".join(tables) + "\n"


documents = st.dictionaries(
    keys, st.one_of(toml_scalars, st.dictionaries(keys, toml_scalars, max_size=4)), max_size=6
)


@settings_
@given(documents)
def test_random_documents_as_config(tmp_path: Path, doc: dict) -> None:
    path = tmp_path / "qarion-etl.toml"
    path.write_text(_toml_doc(doc))
    try:
        parse_config(path, env={})
    except ConfigError as exc:
        assert exc.exit_code == 2


@settings_
@given(documents)
def test_random_documents_as_flow(tmp_path: Path, doc: dict) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(_toml_doc(doc))
    try:
        validate_flow(load_flow(path))
    except FlowValidationError as exc:
        assert exc.exit_code == 2


@pytest.mark.parametrize("value", ["x" * 10_000, "a\u0000b", "../../etc", "é名", "a;b", 'q"uote'])
def test_hostile_ids_in_flows(tmp_path: Path, value: str) -> None:
    path = tmp_path / "flow.toml"
    text = (
        f"id = {_toml_value(value)}\nnamespace = {_toml_value(value)}\n[[tasks]]\nid = {_toml_value(value)}\n"
        f'type = "transformation"\ntarget_dataset_id = {_toml_value(value)}\n[tasks.config]\nsql = "SELECT 1"\n'
    )
    path.write_text(text)
    with pytest.raises(FlowValidationError) as exc:
        load_flow(path)
    assert "must be letters, digits" in str(exc.value)
    assert len(str(exc.value)) < 2000
