"""One frozen, typed configuration: the environment (`PROCTOR_*`), then `.env`, then defaults.

Built on pydantic-settings. Every key is typed and bounded; a missing or invalid value stops
start-up with the key's name (`SettingsError`, "PROCTOR_KEY: message"). The five secrets are
`SecretStr`: they never appear in `repr()`, `str()` or a dump, and a use site reads one with
`.get_secret_value()`, so every place a secret leaves this object is visible in a grep.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import platformdirs
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PREFIX = "PROCTOR_"
SECRET_FIELDS = frozenset({"database_url", "redis_url", "secret", "admin_token", "oidc_client_secret"})
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{PREFIX}{key}: {message}")
        self.key = key


# -- bounds shared by several keys --------------------------------------------------------------


def _split_commas(value: object) -> object:
    # The environment gives "a, b,,c"; code and tests may pass a tuple or list.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _origin(value: str) -> str:
    if value == "*":
        return value
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ValueError(f"{value!r} is not an origin (http[s]://host[:port], or *)")
    return value


def _ice_server(value: str) -> str:
    if urllib.parse.urlsplit(value).scheme not in ("stun", "stuns", "turn", "turns"):
        raise ValueError(f"{value!r} is not a STUN/TURN URL (stun:host:port, turn:…, turns:…)")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=1)]  # bursts, capacities, batch sizes
Rate = Annotated[float, Field(gt=0)]  # per second
Seconds = Annotated[float, Field(gt=0)]
Origins = Annotated[tuple[Annotated[str, AfterValidator(_origin)], ...], NoDecode, BeforeValidator(_split_commas)]
IceServers = Annotated[
    tuple[Annotated[str, AfterValidator(_ice_server)], ...], NoDecode, BeforeValidator(_split_commas)
]


_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")


def _email_domain(value: str) -> str:
    # Compared with the part after "@" of a verified address, so a domain is all there is:
    # no "@", no wildcard (a subdomain is listed on its own), at least two labels.
    domain = value.lower()
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r} is not an email domain (school.example; no @, no wildcard)")
    return domain


Domains = Annotated[tuple[Annotated[str, AfterValidator(_email_domain)], ...], NoDecode, BeforeValidator(_split_commas)]


def _url_with_scheme(value: SecretStr, schemes: tuple[str, ...]) -> SecretStr:
    """An empty URL means "not configured"; otherwise it must start with one of `schemes`."""
    text = value.get_secret_value()
    if text and not text.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        # The URL itself is not repeated: it may carry a password.
        raise ValueError("must start with " + " or ".join(f"{scheme}://" for scheme in schemes))
    return value


# -- reading an explicit environment (tests, `Settings.load(environ=…)`) -----------------------

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("proctor_settings_environ", default=None)


class _GivenEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by the parent's __init__
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {(name if self.case_sensitive else name.lower()): value for name, value in self._environ.items()}


class _ProctorLines(PydanticBaseSettingsSource):
    """The `.env` source minus lines that are not ours.

    With `extra="forbid"` pydantic-settings refuses every unknown line of `.env`; another tool's
    keys there are not our business, a misspelt `PROCTOR_*` key is (it would be silently unused).
    """

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._dotenv.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        prefix = PREFIX.lower()
        fields = self.settings_cls.model_fields
        return {
            name: value for name, value in self._dotenv().items() if name in fields or name.lower().startswith(prefix)
        }


def _settings_error(exc: ValidationError) -> SettingsError:
    """The first error as `PROCTOR_KEY: message`, never with a secret's value."""
    errors = exc.errors(include_url=False)
    key, message = _describe(errors[0])
    others = sorted({_describe(error)[0] for error in errors[1:]} - {key})
    if others:
        message += " (also invalid: " + ", ".join(PREFIX + other for other in others) + ")"
    return SettingsError(key, message)


def _describe(error: ErrorDetails) -> tuple[str, str]:
    name = str(error["loc"][0]) if error["loc"] else "?"
    key = name.upper()
    if key.startswith(PREFIX):  # an unknown PROCTOR_* line in `.env` keeps its prefix
        key = key[len(PREFIX) :]
    if error["type"] == "extra_forbidden":
        return key, "not a setting (misspelt?)"
    message = error["msg"].removeprefix("Value error, ")
    if name not in SECRET_FIELDS and error["type"] != "value_error" and isinstance(error["input"], str | int | float):
        message += f", got {str(error['input'])[:80]!r}"
    return key, message


class Settings(BaseSettings):
    """Every key of the node; README.md "Configuration" lists them with their bounds."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="forbid",  # a misspelt keyword or PROCTOR_* line in `.env` stops start-up
        allow_inf_nan=False,  # "nan" and "inf" are not rates or timeouts
        validate_default=True,
        hide_input_in_errors=True,
    )

    host: str = "127.0.0.1"
    port: Port = 8080
    data_dir: Path = Path(platformdirs.user_data_dir("proctor"))
    database_url: SecretStr = SecretStr("")
    redis_url: SecretStr = SecretStr("")
    secret: SecretStr = SecretStr("")
    admin_token: SecretStr = SecretStr("")
    node_id: str = ""
    rooms_per_node: Count = 50
    public_url: str = ""
    allowed_origins: Origins = ()
    # Below 1 KiB no exam or Socket.IO message of ours fits.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1 << 20
    max_message_bytes: Annotated[int, Field(ge=1024)] = 16 << 10
    events_per_second: Rate = 20.0
    event_burst: Count = 60
    max_connections: Count = 20000
    reconnect_grace_seconds: Seconds = 15.0
    # How long the first event of a batch waits for company; past a second acks would lag.
    writer_flush_ms: Annotated[float, Field(gt=0, le=1000)] = 2.0
    writer_batch_size: Count = 500
    writer_max_pending: Count = 50000
    ice_servers: IceServers = ()
    face_model: str = ""
    # Width frames are scaled to for face detection (0: as received). Evidence stays full size.
    analysis_detect_width: Annotated[int, Field(ge=0)] = 160
    # A frame in which the small copy shows nobody is detected again at full size before
    # "No face" is decided (detection/scaled.py; docs/analysis-quality.md measured why).
    analysis_detect_recheck: bool = True
    # How students' cameras reach analysis (docs/architecture.md, "Analysis transport"):
    # "snapshot" = the page sends a small JPEG per sample over its Socket.IO connection,
    # "webrtc" = a video track to the node's aiortc peer. Exams that listen for speech use
    # WebRTC either way (the microphone needs it); the teacher's live view is always WebRTC.
    analysis_transport: Literal["snapshot", "webrtc"] = "snapshot"
    # The largest snapshot taken (the page sends 320 px at quality 0.6, 8-15 KiB); at most
    # 4 x max_message_bytes, the Engine.IO message bound.
    analysis_snapshot_max_bytes: Annotated[int, Field(ge=4096)] = 48 << 10
    # Reuse the last detection for a frame that has not changed (media/change.py), but
    # detect at least every `analysis_force_detect_seconds`.
    analysis_skip_unchanged: bool = True
    analysis_force_detect_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    log_level: LogLevel = "INFO"
    gc_tuning: bool = True
    drain_timeout_seconds: Seconds = 30.0
    # The whole stop after SIGTERM (drain included); past it the node logs what it waits
    # for and exits with status 1 (server/shutdown.py).
    shutdown_timeout_seconds: Seconds = 60.0
    retention_interval_seconds: Seconds = 3600.0
    # Admission: new Socket.IO connections per client address (an exam hall behind one NAT
    # reconnecting at once must fit in the burst).
    connects_per_ip_per_second: Rate = 10.0
    connect_burst_per_ip: Count = 500
    # Node-wide pacing of new connections (see signaling/guard.py Admission): beyond the
    # burst, connects queue for their turn at this rate (refused past 10 s of queue).
    connects_per_second: Rate = 100.0
    connect_burst: Count = 50
    # Cluster (with REDIS_URL): "room" = one Redis channel per Socket.IO room, "single" =
    # python-socketio's one channel for everything (kept for comparison; docs/cluster.md).
    redis_channels: Literal["room", "single"] = "room"
    # step 9: logs — "text" (a line per record for people) or "json" (one object per line
    # for a log shipper; server/logs.py).
    log_format: Literal["text", "json"] = "text"
    # step 9: TLS — PEM paths; both set: `proctor serve` speaks HTTPS (server/tls.py checks the files).
    tls_cert: str = ""
    tls_key: str = ""
    # Accounts (Step 10 part A, docs/accounts.md): browser sessions end after this long
    # without a request, and at the latest this long after sign-in.
    session_idle_seconds: Annotated[float, Field(ge=60, le=30 * 86400)] = 8 * 3600.0
    session_absolute_seconds: Annotated[float, Field(ge=60, le=365 * 86400)] = 7 * 86400.0
    # Sign-in limits: failures per typed email in a window, attempts per client address.
    signin_account_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    signin_account_window_seconds: Annotated[float, Field(gt=0, le=86400)] = 900.0
    signin_address_attempts: Annotated[int, Field(ge=1, le=100_000)] = 20
    signin_address_window_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    # step 10 part B: teachers sign in with OpenID Connect (docs/accounts.md, "Single sign-on").
    # Off while OIDC_ISSUER is empty; the client id and secret are then required.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    # Email domains whose (verified) addresses may sign in; empty: any the provider vouches for.
    oidc_allowed_domains: Domains = ()
    # Who is an admin: "claim=value" (the claim equals value, or is a list holding it) or
    # "claim" (the claim is true). Empty: SSO never makes an admin.
    oidc_admin_claim: str = ""
    # step 11: LTI 1.3 (docs/lti.md). A rotated tool key stays in /lti/jwks this many days; a
    # platform's JWKS is cached this long (fetched again at once for an unknown kid, at most
    # every LTI_JWKS_REFETCH_SECONDS); id_token exp/iat get this leeway; an instructor's
    # dashboard token from a launch lasts this long (docs/lti.md, "Sessions in the iframe").
    lti_key_overlap_days: Annotated[float, Field(ge=0, le=365)] = 7.0
    lti_jwks_cache_seconds: Annotated[float, Field(ge=0, le=86400)] = 3600.0
    lti_jwks_refetch_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    lti_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    lti_session_seconds: Annotated[float, Field(ge=300, le=86400)] = 4 * 3600.0
    # step 11 part B: grades to LTI platforms wait in an outbox (docs/lti.md "Grades (AGS)"):
    # a failed try waits base · 2^(tries-1) seconds (capped, jittered); after max tries: failed.
    lti_retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    lti_retry_cap_seconds: Annotated[float, Field(gt=0, le=86400)] = 3600.0
    lti_retry_max_tries: Annotated[int, Field(ge=1, le=100)] = 12
    lti_outbox_poll_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0

    def __init__(self, **values: Any) -> None:
        # Whoever builds a Settings (the CLI, a test, `replace`) gets the one error type.
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _settings_error(exc) from None
        if bool(self.tls_cert) != bool(self.tls_key):
            # Named after the one missing: half a pair would silently serve plain HTTP.
            missing = "TLS_KEY" if self.tls_cert else "TLS_CERT"
            raise SettingsError(missing, "set both PROCTOR_TLS_CERT and PROCTOR_TLS_KEY, or neither")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keywords (CLI flags) first, then the environment, then `.env`; no secrets directory.
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _GivenEnvironment(settings_cls, environ)
        return init_settings, env, _ProctorLines(settings_cls, dotenv_settings)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: Path | None = Path(".env"),
        **overrides: Any,
    ) -> Settings:
        """Environment first, then `.env`, then defaults; `overrides` (CLI flags) win, None skipped.

        `environ` replaces the process environment (tests pass `{}`); `env_file=None` reads no file.
        """
        given = {name: value for name, value in overrides.items() if value is not None}
        return cls._from_sources(environ, env_file, given)

    @classmethod
    def _from_sources(cls, environ: Mapping[str, str] | None, env_file: Path | None, values: dict[str, Any]) -> Self:
        token = _ENVIRON.set(environ)
        try:
            return cls(_env_file=env_file, **values)
        finally:
            _ENVIRON.reset(token)

    # -- bounds that need code ----------------------------------------------------------------

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("must be an address or host name, without spaces")
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must be a directory path")
            return Path(value).expanduser()
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("postgresql", "postgres"))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("redis", "rediss", "unix"))

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        # HS256 keys shorter than the hash are weak (RFC 7518 §3.2); empty means "generate one".
        if value.get_secret_value() and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text and (len(text) < 16 or any(ch.isspace() for ch in text)):
            raise ValueError("must be at least 16 characters, without spaces")
        return value

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, value: str) -> str:
        # Part of Redis keys and channel names; empty means hostname-port.
        if len(value) > 128 or not all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in value):
            raise ValueError("must be at most 128 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _oidc_issuer(cls, value: str) -> str:
        # The id_token's `iss` is compared with this string exactly (OIDC Discovery §4.3).
        if not value:
            return value
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be the provider's https:// issuer URL, without query or fragment")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            # Codes, tokens and the signing keys would travel in the clear.
            raise ValueError("must use https:// (http:// only on a loopback host, for tests)")
        return value

    @field_validator("oidc_client_id")
    @classmethod
    def _oidc_client_id(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("oidc_issuer") and not value:
            raise ValueError("is required with PROCTOR_OIDC_ISSUER")
        if len(value) > 255 or not all(ch.isascii() and ch.isprintable() and not ch.isspace() for ch in value):
            raise ValueError("must be at most 255 printable ASCII characters, without spaces")
        return value

    @field_validator("oidc_client_secret")
    @classmethod
    def _oidc_client_secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        text = value.get_secret_value()
        if info.data.get("oidc_issuer") and not text:
            raise ValueError("is required with PROCTOR_OIDC_ISSUER (the client is confidential)")
        if len(text) > 1024 or not all(ch.isascii() and ch.isprintable() and not ch.isspace() for ch in text):
            raise ValueError("must be at most 1024 printable ASCII characters, without spaces")
        return value

    @field_validator("oidc_admin_claim")
    @classmethod
    def _oidc_admin_claim(cls, value: str) -> str:
        name, has_value, expected = value.partition("=")
        if value and (not _CLAIM_NAME.match(name) or (has_value and not expected.strip())):
            raise ValueError("must be a claim name (a boolean claim) or claim=value, e.g. groups=proctor-admins")
        return value

    @field_validator("face_model")
    @classmethod
    def _face_model(cls, value: str) -> str:
        # Checked here so a typo stops start-up instead of silently running without analysis.
        if value and not Path(value).expanduser().is_file():
            raise ValueError(f"no such file: {value}")
        return str(Path(value).expanduser()) if value else value

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _tls_file(cls, value: str) -> str:
        # Only the shape here: server/tls.py reads and checks the files when `serve` starts
        # (and on SIGHUP), because `proctor cert` must run before they exist.
        if value and not value.strip():
            raise ValueError("must be the path of a PEM file")
        return str(Path(value).expanduser()) if value else value

    @field_validator("analysis_detect_width")
    @classmethod
    def _analysis_detect_width(cls, value: int) -> int:
        if 0 < value < 32:  # detection/scaled.py refuses narrower
            raise ValueError("must be 0 (as received) or at least 32 pixels")
        return value

    @field_validator("analysis_snapshot_max_bytes")
    @classmethod
    def _analysis_snapshot_max_bytes(cls, value: int, info: ValidationInfo) -> int:
        # Engine.IO closes a connection whose message is over 4 x max_message_bytes
        # (signaling/hub.py): a larger frame limit would never answer "too_large".
        bound = 4 * int(info.data.get("max_message_bytes", 16 << 10))
        if value > bound:
            raise ValueError(f"must be at most 4 x PROCTOR_MAX_MESSAGE_BYTES ({bound})")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # -- derived values and copies ----------------------------------------------------------

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def oidc_admin_rule(self) -> tuple[str, str | None]:
        """(claim, value) from OIDC_ADMIN_CLAIM; value None means "the claim is true"."""
        name, has_value, expected = self.oidc_admin_claim.partition("=")
        return name, expected.strip() if has_value else None

    @property
    def base_url(self) -> str:
        return self.public_url or f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, validated like a fresh Settings (pydantic's own skips that)."""
        if not update:
            return super().model_copy(deep=deep)
        # A fresh Settings from exactly these values (pydantic-settings' model_validate would read
        # the environment and `.env` again): bounded like any other, errors as SettingsError.
        return self._from_sources({}, None, {**dict(self), **update})

    def replace(self, **changes: Any) -> Self:
        """`dataclasses.replace` for Settings: a validated copy with `changes`."""
        return self.model_copy(update=changes)

    def with_runtime_defaults(self) -> Self:
        """Fill what depends on the data dir or the host: node id, secret (persisted)."""
        changes: dict[str, Any] = {}
        if not self.node_id:
            changes["node_id"] = f"{socket.gethostname()}-{self.port}"
        if not self.secret.get_secret_value():
            changes["secret"] = _persisted_secret(self.data_dir / "secret")
        return self.replace(**changes) if changes else self


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _persisted_secret(path: Path) -> str:
    # The signing key must survive restarts, or every issued invite would die with the process.
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
