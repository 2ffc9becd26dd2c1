"""URL credentials in every form: masked in text, and found to be scrubbed everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qarion_etl.definitions.config import ProjectConfig, parse_config
from qarion_etl.masking import MASK, Secret, mask, mask_url, secrets_in, url_passwords
from qarion_etl.project import Project


@pytest.mark.parametrize(
    ("url", "shown", "secret"),
    [
        (
            "postgresql+psycopg://me:Pw_1234@db:5432/x",
            "postgresql+psycopg://me:***@db:5432/x",
            "Pw_1234",
        ),
        # An unencoded "@" in the password: everything up to the host's "@" is masked.
        (
            "postgresql://postgres:pw@Secret_8231@127.0.0.1:5432/test",
            "postgresql://postgres:***@127.0.0.1:5432/test",
            "Secret_8231",
        ),
        (
            "postgresql://me@db/x?sslmode=require&password=Qp_99&application_name=a",
            "postgresql://me@db/x?sslmode=require&password=***&application_name=a",
            "Qp_99",
        ),
        ("mysql+pymysql://root:R00t%40pw@h/db", "mysql+pymysql://root:***@h/db", "R00t@pw"),
        (
            "duckdb:///w.duckdb?motherduck_token=Tk_123",
            "duckdb:///w.duckdb?motherduck_token=***",
            "Tk_123",
        ),
        ("http://minio:Mn_pw_7@127.0.0.1:9000", "http://minio:***@127.0.0.1:9000", "Mn_pw_7"),
    ],
)
def test_every_form_of_url_credential_is_masked_and_found(
    url: str, shown: str, secret: str
) -> None:
    assert mask_url(url) == shown
    assert secret in url_passwords(url)
    # Inside a sentence, in quotes, after a colon: the same.
    sentence = f'cannot use database "{url}": connection refused'
    assert secret not in mask_url(sentence) and "connection refused" in mask_url(sentence)


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///.qarion/metadata.db",
        "mysql://root@127.0.0.1:3306/test",
        "http://127.0.0.1:9000/bucket",
        "SELECT a FROM t WHERE x = 1 AND y=2",
        "no such table: t@x",
        "a" * 10_000,
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert mask_url(text) == text
    assert url_passwords(text) == []


#: A password as a URL may hold it unencoded: anything but blanks, controls, quotes and <>.
PASSWORDS = st.text(
    alphabet=st.characters(exclude_categories=("Z", "C"), exclude_characters="'\"<>"),
    min_size=3,
)


@given(PASSWORDS)
def test_any_password_is_masked(password: str) -> None:
    url = f"postgresql://user:{password}@db.example:5432/x"
    assert mask_url(url) == "postgresql://user:***@db.example:5432/x"
    assert password in url_passwords(url)


def test_mask_and_secrets_in_walk_the_configuration() -> None:
    table = {
        "token": Secret("Tok_abc"),
        "region_name": Secret("eu-west-1"),
        "urls": ["postgresql://u:Lp_1@h/x", "plain"],
    }
    assert mask(table) == {
        "token": MASK,
        "region_name": MASK,
        "urls": ["postgresql://u:***@h/x", "plain"],
    }
    found = secrets_in(table)
    assert "Tok_abc" in found and "Lp_1" in found
    assert "eu-west-1" not in found  # a region is named in messages (the S3 backend's)


def test_project_scrubs_every_form(tmp_path: Path) -> None:
    (tmp_path / "qarion-etl.toml").write_text(
        """
[engine]
url = "postgresql://postgres:${env:QE_T_PGPW}@127.0.0.1:5432/test"
[metadata]
url = "postgresql://postgres@127.0.0.1:5432/test?password=Query_Pw_1"
[xcom.backend_config]
table_name = "x"
[credentials.api]
token = "Cred_Tok_1"
dsn = "postgresql://u:At@Pw_Part_1@db.internal/x"
"""
    )
    config: ProjectConfig = parse_config(
        tmp_path / "qarion-etl.toml", env={"QE_T_PGPW": "Env_Pw_1"}
    )
    project = Project(config)
    text = (
        'connection to "Pw_Part_1@db.internal" failed; Env_Pw_1 Query_Pw_1 Cred_Tok_1; '
        "see postgresql://x:Other_Pw@h/db and ?password=Loose_1"
    )
    scrubbed = project.scrub(text)
    for secret in ("Pw_Part_1", "Env_Pw_1", "Query_Pw_1", "Cred_Tok_1", "Other_Pw", "Loose_1"):
        assert secret not in scrubbed, scrubbed
    assert "db.internal" in scrubbed and "failed" in scrubbed
    shown = str(config.to_display())
    for secret in ("At@Pw_Part_1", "Env_Pw_1", "Query_Pw_1", "Cred_Tok_1"):
        assert secret not in shown, shown
