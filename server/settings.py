"""One frozen, typed configuration read from the environment, then `.env`, then defaults.

A missing or invalid value stops start-up with the key's name (`SettingsError`).
Secrets never appear in `repr()`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

PREFIX = "PROCTOR_"


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{PREFIX}{key}: {message}")
        self.key = key


def _secret_field() -> Any:
    return field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(platformdirs.user_data_dir("proctor"))
    database_url: str = _secret_field()
    redis_url: str = _secret_field()
    secret: str = _secret_field()
    admin_token: str = _secret_field()
    node_id: str = ""
    rooms_per_node: int = 50
    public_url: str = ""
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    max_message_bytes: int = 16 << 10
    events_per_second: float = 20.0
    event_burst: int = 60
    max_connections: int = 20000
    reconnect_grace_seconds: float = 15.0
    writer_flush_ms: float = 2.0
    writer_batch_size: int = 500
    writer_max_pending: int = 50000
    ice_servers: tuple[str, ...] = ()
    face_model: str = ""
    # Width frames are scaled to for face detection (0: as received). Evidence stays full size.
    analysis_detect_width: int = 160
    log_level: str = "INFO"
    gc_tuning: bool = True
    drain_timeout_seconds: float = 30.0
    # The whole stop after SIGTERM (drain included); past it the node logs what it waits
    # for and exits with status 1 (server/shutdown.py).
    shutdown_timeout_seconds: float = 60.0
    retention_interval_seconds: float = 3600.0
    # Admission: new Socket.IO connections per client address (an exam hall behind one NAT
    # reconnecting at once must fit in the burst).
    connects_per_ip_per_second: float = 10.0
    connect_burst_per_ip: int = 500
    # Node-wide pacing of new connections (see signaling/guard.py Admission): beyond the
    # burst, connects queue for their turn at this rate (refused past 10 s of queue).
    connects_per_second: float = 100.0
    connect_burst: int = 50
    # Cluster (with REDIS_URL): "room" = one Redis channel per Socket.IO room, "single" =
    # python-socketio's one channel for everything (kept for comparison; docs/cluster.md).
    redis_channels: str = "room"
    # step 9: TLS — PEM paths; both set: `proctor serve` speaks HTTPS (server/tls.py).
    tls_cert: str = ""
    tls_key: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def base_url(self) -> str:
        return self.public_url or f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: Path | None = Path(".env"),
        **overrides: Any,
    ) -> Settings:
        """Environment first, then `.env`, then defaults; `overrides` (CLI flags) win."""
        env = dict(environ if environ is not None else os.environ)
        file_values = _read_env_file(env_file) if env_file is not None else {}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f.name.upper()
            raw = env.get(PREFIX + key, file_values.get(PREFIX + key))
            if raw is None:
                continue
            values[f.name] = _convert(key, raw, f.type)
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        settings = cls(**values)
        settings._validate()
        return settings

    def _validate(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError("PORT", f"must be 1..65535, got {self.port}")
        if self.rooms_per_node < 1:
            raise SettingsError("ROOMS_PER_NODE", "must be at least 1")
        for key in ("max_body_bytes", "max_message_bytes", "writer_batch_size", "writer_max_pending"):
            if getattr(self, key) < 1:
                raise SettingsError(key.upper(), "must be positive")
        if self.database_url and not self.database_url.startswith(("postgres://", "postgresql://")):
            raise SettingsError("DATABASE_URL", "must start with postgresql://")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL", "must start with redis://, rediss:// or unix://")
        if self.redis_channels not in ("room", "single"):
            raise SettingsError("REDIS_CHANNELS", "must be room or single")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError("LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            # Invite links and the pages' CSP origin are built from it.
            raise SettingsError("PUBLIC_URL", f"must start with http:// or https://, got {self.public_url!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            missing = "TLS_KEY" if self.tls_cert else "TLS_CERT"
            raise SettingsError(missing, "set both PROCTOR_TLS_CERT and PROCTOR_TLS_KEY, or neither")

    def with_runtime_defaults(self) -> Settings:
        """Fill what depends on the data dir or the host: node id, secret (persisted)."""
        changes: dict[str, Any] = {}
        if not self.node_id:
            changes["node_id"] = f"{socket.gethostname()}-{self.port}"
        if not self.secret:
            changes["secret"] = _persisted_secret(self.data_dir / "secret")
        return self.replace(**changes) if changes else self


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


def _convert(key: str, raw: str, type_: Any) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    raw = raw.strip()
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if type_name == "Path":
            return Path(raw).expanduser()
        if type_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(key, f"invalid value: {exc}") from None
    return raw


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        name, sep, value = line.partition("=")
        if not sep:
            raise SettingsError(name or "?", f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values
