"""Building a bounded boto3 S3 client, and turning its errors into one clear line.

boto3 and botocore are imported inside the functions only, so importing this module (or
the ``s3`` backend) costs nothing until an S3 backend is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qarion_etl.errors import ConfigError, StoreUnavailable, clip, closest

#: Keys a ``credentials`` table may hold.
CREDENTIAL_KEYS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "profile_name",
)

#: How each S3 error code reads in a message (never the raw server text, which may
#: echo request details).
_REASONS = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied (check the credentials and the bucket policy)",
    "AllAccessDisabled": "access to the bucket is disabled",
    "403": "access denied (check the credentials and the bucket policy)",
    "InvalidAccessKeyId": "the access key id is not known to this endpoint (check the credentials)",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "TokenRefreshRequired": "the session token must be refreshed",
    "InvalidBucketName": "the bucket name is not valid",
    "PermanentRedirect": "the bucket is in another region (set region_name)",
    "AuthorizationHeaderMalformed": "the region does not match the bucket's (set region_name)",
    "SlowDown": "the store is throttling requests (retries exhausted)",
    "ServiceUnavailable": "the store is unavailable (retries exhausted)",
    "InternalError": "the store reported an internal error (retries exhausted)",
}


def check_credentials(credentials: Any) -> dict[str, str]:
    """The ``credentials`` option as plain keyword arguments for ``boto3.Session``.

    Raises:
        ConfigError: not a table, or a key that is not a credential setting.
    """
    if credentials is None:
        return {}
    if not isinstance(credentials, Mapping):
        raise ConfigError(
            "[xcom].backend_config.credentials must be a table (aws_access_key_id, "
            'aws_secret_access_key, …) or a reference "${credential:NAME}", '
            f"not {type(credentials).__name__}"
        )
    out: dict[str, str] = {}
    for name, value in credentials.items():
        if name not in CREDENTIAL_KEYS:
            close = closest(name, CREDENTIAL_KEYS)
            hint = f"; did you mean '{close}'?" if close else ""
            raise ConfigError(
                f"[xcom].backend_config.credentials: unknown key '{clip(name)}'{hint} "
                f"(keys: {', '.join(CREDENTIAL_KEYS)})"
            )
        if value is not None and value != "":
            out[name] = str(value)
    if ("aws_access_key_id" in out) != ("aws_secret_access_key" in out):
        raise ConfigError(
            "[xcom].backend_config.credentials: give both aws_access_key_id and "
            "aws_secret_access_key, or neither (to use boto3's default chain)"
        )
    return out


def build_client(
    credentials: Mapping[str, str],
    *,
    region_name: str | None,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    max_pool_connections: int,
    addressing_style: str | None,
) -> Any:
    """A boto3 S3 client with bounded timeouts and retries. Makes no network call."""
    import boto3
    from botocore.config import Config

    session_args = {k: v for k, v in credentials.items() if k != "region_name"}
    region = region_name or credentials.get("region_name")
    session = boto3.session.Session(**session_args)
    style = addressing_style or ("path" if endpoint_url else "auto")
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": style},
        user_agent_extra="qarion-etl",
    )
    return session.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchKey``, ``404`` …), else ``None``."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else None


def store_error(
    exc: BaseException,
    *,
    bucket: str,
    operation: str,
    endpoint_url: str | None,
    secrets: Iterable[str] = (),
) -> StoreUnavailable:
    """One line naming the bucket and the operation, for any boto3/botocore failure."""
    from botocore import exceptions as bx

    where = f"endpoint {endpoint_url}" if endpoint_url else "the AWS endpoint"
    if isinstance(exc, bx.ClientError):
        code = error_code(exc) or "error"
        message = exc.response.get("Error", {}).get("Message") or ""
        reason = _REASONS.get(code) or f"{code}: {clip(str(message), 120)}".rstrip(": ")
    elif isinstance(exc, bx.NoCredentialsError):
        reason = (
            "no AWS credentials found (set backend_config.credentials, a [credentials] "
            "table, or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables)"
        )
    elif isinstance(exc, bx.PartialCredentialsError):
        reason = f"incomplete AWS credentials: {exc}"
    elif isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        reason = f"cannot reach {where}"
    elif isinstance(exc, bx.ReadTimeoutError | bx.ConnectionClosedError):
        reason = f"{where} did not answer in time"
    elif isinstance(exc, bx.ProfileNotFound):
        reason = f"AWS profile not found: {exc}"
    else:
        reason = f"{type(exc).__name__}: {clip(str(exc), 160)}"
    for secret in secrets:
        if secret and len(secret) >= 4:
            reason = reason.replace(secret, "***")
    return StoreUnavailable(f"S3 XCom store: {operation} on bucket '{bucket}' failed: {reason}")
