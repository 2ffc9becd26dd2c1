from __future__ import annotations

import os
from pathlib import Path

import pytest

from qarion_etl.definitions.config import load_config
from qarion_etl.errors import ConfigError
from qarion_etl.masking import Secret

SEED = (
    Path(__file__).parent.parent / "fixtures" / "seed" / "qarion-etl-xcom.txt"
)  # copy of shared/seeds


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qarion-etl.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_design(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), env={})
    assert cfg.engine.url == "duckdb:///warehouse.duckdb"
    assert cfg.metadata.url == "sqlite:///.qarion/metadata.db"
    assert cfg.metadata.namespace == "qarion"
    assert cfg.xcom.enabled is True and cfg.xcom.backend == "database"
    assert cfg.xcom.max_value_bytes == 1_048_576
    assert cfg.root == tmp_path.resolve()
    assert cfg.project.flows_dir == "flows"


def test_found_in_a_parent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[project]\nname = "up"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert load_config(env={}).project.name == "up"


def test_env_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "from-env"\n')
    assert load_config(env={"QARION_ETL_CONFIG": str(path)}).project.name == "from-env"


def test_missing_explicit_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.toml", env={})
    assert exc.value.exit_code == 2
    assert "not found" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[engine]\nurl = "${env:DB_URL}"\n', "postgresql://x"),
        ('[engine]\nurl = "${env:NOPE:-sqlite:///d.db}"\n', "sqlite:///d.db"),
        ('[engine]\nurl = "duckdb:///${env:NAME}.duckdb"\n', "duckdb:///w.duckdb"),
    ],
)
def test_env_interpolation(tmp_path: Path, text: str, expected: str) -> None:
    cfg = load_config(write(tmp_path, text), env={"DB_URL": "postgresql://x", "NAME": "w"})
    assert cfg.engine.url == expected
    assert isinstance(cfg.engine.url, Secret)
    assert "postgresql" not in repr(cfg.engine.url)


def test_missing_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable MISSING_VAR is not set"):
        load_config(write(tmp_path, '[engine]\nurl = "${env:MISSING_VAR}"\n'), env={})


def test_credential_reference_resolves_to_the_table(tmp_path: Path) -> None:
    text = """
[credentials.aws_creds]
aws_access_key_id = "${env:AWS_ACCESS_KEY_ID}"
aws_secret_access_key = "${env:AWS_SECRET_ACCESS_KEY}"
region_name = "us-east-1"

[xcom]
backend = "s3"

[xcom.backend_config]
bucket = "b"
credentials = "${credential:aws_creds}"
"""
    cfg = load_config(
        write(tmp_path, text),
        env={"AWS_ACCESS_KEY_ID": "AKIAXX", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
    )
    creds = cfg.xcom.backend_config["credentials"]
    assert creds["aws_access_key_id"] == "AKIAXX"
    assert creds["region_name"] == "us-east-1"
    shown = cfg.to_display()
    assert "s3cr3t" not in repr(shown) and "AKIAXX" not in repr(shown)
    assert shown["xcom"]["backend_config"]["credentials"]["aws_secret_access_key"] == "***"


def test_unknown_credential_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown credential 'nope'"):
        load_config(
            write(tmp_path, '[xcom.backend_config]\ncredentials = "${credential:nope}"\n'), env={}
        )


def test_unknown_keys_suggest_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, '[xcom]\nenabled = true\nbakend = "s3"\n'), env={})
    assert "unknown key 'bakend' in [xcom] (did you mean 'backend'?)" in str(exc.value)
    assert exc.value.line == 3
    with pytest.raises(ConfigError, match="unknown section 'engnie'.*did you mean 'engine'"):
        load_config(write(tmp_path, '[engnie]\nurl = "x"\n'), env={})


def test_wrong_types_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[xcom\].max_value_bytes must be an integer"):
        load_config(write(tmp_path, '[xcom]\nmax_value_bytes = "big"\n'), env={})


def test_xcom_backend_alias(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[xcom]\nxcom_backend = "my.mod:Backend"\n'), env={})
    assert cfg.xcom.backend == "my.mod:Backend"


def test_backend_config_as_table_or_inline(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, '[xcom]\nbackend_config = { table_name = "x" }\n'), env={})
    b = load_config(write(tmp_path, '[xcom.backend_config]\ntable_name = "x"\n'), env={})
    assert dict(a.xcom.backend_config) == dict(b.xcom.backend_config) == {"table_name": "x"}


def _seed_blocks() -> list[str]:
    text = SEED.read_text()
    blocks, current = [], None
    for line in text.splitlines():
        if line == "[xcom]":
            current = [line]
            blocks.append(current)
        elif current is not None:
            if (
                line
                and not line[0].isalnum()
                and not line.startswith(("#", "}", "["))
                and "=" not in line
            ):
                current = None
            elif line.startswith(
                ("Or with", "Local File", "Usage", "S3 Backend", "Stores", "Best", "Flow")
            ):
                current = None
            else:
                current.append(line)
    return ["\n".join(b) + "\n" for b in blocks]


def test_seed_blocks_are_found() -> None:
    blocks = _seed_blocks()
    # enable, database, s3 (reference), s3 (explicit), local file, complete example
    assert len(blocks) == 6, blocks


@pytest.mark.skipif(not SEED.exists(), reason="seed page not beside the repository")
def test_seed_database_and_local_file_blocks_load_verbatim(tmp_path: Path) -> None:
    blocks = _seed_blocks()
    db = load_config(write(tmp_path, blocks[1]), env={})
    assert dict(db.xcom.backend_config) == {"table_name": "xcom"}
    local = load_config(write(tmp_path, blocks[4]), env={})
    assert local.xcom.backend == "local_file"
    assert dict(local.xcom.backend_config) == {"base_path": "xcom"}


@pytest.mark.skipif(not SEED.exists(), reason="seed page not beside the repository")
@pytest.mark.parametrize("index", [2, 3])
def test_seed_s3_blocks_get_a_located_error_with_the_valid_form(tmp_path: Path, index: int) -> None:
    block = _seed_blocks()[index]
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, block), env={})
    err = exc.value
    assert err.exit_code == 2
    assert err.path and err.path.endswith("qarion-etl.toml")
    assert err.line is not None
    assert "[xcom.backend_config]" in str(err)
    assert 'bucket = "my-xcom-bucket"' in str(err)
    # The suggested form is itself valid TOML that loads.
    suggestion = str(err).split("table instead, which is valid in every TOML version:\n", 1)[1]
    fixed = (
        '[xcom]\nenabled = true\nbackend = "s3"\n'
        + "\n".join(row.strip() for row in suggestion.splitlines())
        + "\n"
    )
    fixed += '\n[credentials.aws_creds]\naws_access_key_id = "k"\n'
    cfg = load_config(write(tmp_path, fixed), env={})
    assert cfg.xcom.backend_config["bucket"] == "my-xcom-bucket"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, '[project]\nname = "x\n'), env={})
    assert exc.value.line == 2
    assert "qarion-etl.toml:2" in str(exc.value)


def test_environment_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QARION_T_NS", "from_env")
    cfg = load_config(write(tmp_path, '[metadata]\nnamespace = "${env:QARION_T_NS}"\n'))
    assert cfg.metadata.namespace == "from_env"
    assert os.environ["QARION_T_NS"] == "from_env"
