from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from server.embedded_pg import free_port
from server.settings import Settings, SettingsError

# At least one out-of-range value per key, as an operator would type it into the environment.
# The walk below goes over Settings.model_fields, so a new key without a case here fails.
BAD_VALUES: dict[str, list[str]] = {
    "host": ["", "two words"],
    "port": ["0", "70000", "-1", "eighty"],
    "data_dir": [""],
    "database_url": ["mysql://u:pw@db/x", "db.example/x"],
    "redis_url": ["http://u:pw@cache:6379", "cache:6379"],
    "secret": ["too-short-s3cret-value"],
    "admin_token": ["short", "an admin token with spaces"],
    "node_id": ["two words", "node:1", "n" * 200],
    "rooms_per_node": ["0", "-3", "many"],
    "public_url": ["ftp://proctor.example", "proctor.example", "https://"],
    "allowed_origins": ["proctor.example", "https://a.example,ftp://b.example", "https://a.example/exam"],
    "max_body_bytes": ["0", "100"],
    "max_message_bytes": ["0", "100"],
    "events_per_second": ["0", "-1", "nan", "inf"],
    "event_burst": ["0", "1.5"],
    "max_connections": ["0"],
    "reconnect_grace_seconds": ["0", "-5", "nan"],
    "writer_flush_ms": ["0", "-1", "60000"],
    "writer_batch_size": ["0"],
    "writer_max_pending": ["0"],
    "ice_servers": ["http://stun.example", "stun.example:3478"],
    "face_model": ["/nonexistent/centerface.onnx"],
    "analysis_detect_width": ["-1", "16"],
    "analysis_transport": ["jpeg", "SNAPSHOT", ""],
    # Below 4 KiB, and above the Engine.IO message bound (4 x max_message_bytes).
    "analysis_snapshot_max_bytes": ["100", "70000", "-1"],
    "analysis_skip_unchanged": ["sometimes"],
    "analysis_detect_recheck": ["perhaps"],
    "analysis_force_detect_seconds": ["0", "-1", "61", "nan"],
    "log_level": ["LOUD", "10"],
    "gc_tuning": ["maybe"],
    "drain_timeout_seconds": ["0", "inf"],
    "shutdown_timeout_seconds": ["0", "-1"],
    "retention_interval_seconds": ["0"],
    "connects_per_ip_per_second": ["0", "-0.5"],
    "connect_burst_per_ip": ["0"],
    "connects_per_second": ["0"],
    "connect_burst": ["0"],
    "redis_channels": ["both", "ROOM"],
    "log_format": ["xml", "JSON"],
    # Alone each is refused too (naming the other), and bad files at serve time (tests/server/test_tls.py).
    "tls_cert": [" ", "\t"],
    "tls_key": [" "],
    "session_idle_seconds": ["0", "59", "nan", "9999999999"],
    "session_absolute_seconds": ["0", "-1", "inf", "99999999999"],
    "signin_account_failures": ["0", "1.5", "1001"],
    "signin_account_window_seconds": ["0", "-1", "86401"],
    "signin_address_attempts": ["0", "many"],
    "signin_address_window_seconds": ["0", "nan", "86401"],
    "lti_key_overlap_days": ["-1", "nan", "366"],
    "lti_jwks_cache_seconds": ["-1", "nan", "86401"],
    "lti_jwks_refetch_seconds": ["-1", "nan", "3601"],
    "lti_leeway_seconds": ["-1", "nan", "301"],
    "lti_session_seconds": ["299", "nan", "86401"],
    "oidc_issuer": [
        "idp.example",
        "ftp://idp.example",
        "http://idp.example",
        "https://idp.example/?tenant=1",
        "https://idp.example/#x",
    ],
    "oidc_client_id": ["two words", "c" * 256, "naïve"],
    "oidc_client_secret": ["a secret with spaces", "s" * 1025],
    "oidc_allowed_domains": [
        "@school.example",
        "school",
        "*.school.example",
        "school.example,bad_domain.example",
        "-school.example",
    ],
    "oidc_admin_claim": ["groups=", "=proctor-admins", "two words=x"],
    "lti_retry_base_seconds": ["0", "nan", "3601"],
    "lti_retry_cap_seconds": ["0", "inf", "86401"],
    "lti_retry_max_tries": ["0", "101", "many"],
    "lti_outbox_poll_seconds": ["0", "-1", "301"],
}
SECRET_KEYS = ("database_url", "redis_url", "secret", "admin_token", "oidc_client_secret")


@pytest.fixture(autouse=True)
def clean_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PROCTOR_* from the developer's shell, and a working directory without a `.env`."""
    for name in list(os.environ):
        if name.startswith("PROCTOR_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_key_refuses_out_of_range_values_from_the_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert BAD_VALUES.get(name), f"no bad value for {name}: add one to BAD_VALUES"
    key = name.upper()
    for value in BAD_VALUES[name]:
        monkeypatch.setenv(f"PROCTOR_{key}", value)
        with pytest.raises(SettingsError) as info:
            Settings.load()
        assert info.value.key == key, value
        assert str(info.value).startswith(f"PROCTOR_{key}: "), str(info.value)
        if name in SECRET_KEYS:
            assert value not in str(info.value)
        # The same through the constructor: nothing builds a Settings that is out of range.
        with pytest.raises(SettingsError):
            Settings()


def test_bad_values_cover_only_real_keys() -> None:
    assert set(BAD_VALUES) == set(Settings.model_fields)


def test_values_at_the_bounds_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "face.onnx"
    model.write_bytes(b"onnx")
    for key, value in {
        "PORT": "65535",
        "EVENTS_PER_SECOND": "0.01",
        "EVENT_BURST": "1",
        "ANALYSIS_DETECT_WIDTH": "0",
        "LOG_LEVEL": "debug",
        "ALLOWED_ORIGINS": "https://a.example, http://b.example:8080,,",
        "FACE_MODEL": str(model),
        "ICE_SERVERS": "stun:stun.example:3478,turns:turn.example?transport=tcp",
        "SECRET": "s" * 32,
        "DATABASE_URL": "postgres://u:pw@db/x",
        "REDIS_URL": "unix:///run/redis.sock",
        "GC_TUNING": "off",
        "PUBLIC_URL": "https://proctor.example/",
        "NODE_ID": "node-1.example_a",
    }.items():
        monkeypatch.setenv(f"PROCTOR_{key}", value)
    s = Settings.load()
    assert s.port == 65535 and s.events_per_second == 0.01 and s.event_burst == 1
    assert s.analysis_detect_width == 0 and s.log_level == "DEBUG" and s.gc_tuning is False
    assert s.allowed_origins == ("https://a.example", "http://b.example:8080")
    assert s.ice_servers == ("stun:stun.example:3478", "turns:turn.example?transport=tcp")
    assert s.face_model == str(model)
    assert s.database_url.get_secret_value() == "postgres://u:pw@db/x"


def test_single_sign_on_needs_its_client_and_takes_loopback_http_only_for_tests() -> None:
    issuer = {"PROCTOR_OIDC_ISSUER": "https://idp.example/realms/school"}
    for missing, given in (
        ("OIDC_CLIENT_ID", {"PROCTOR_OIDC_CLIENT_SECRET": "c-secret"}),
        ("OIDC_CLIENT_SECRET", {"PROCTOR_OIDC_CLIENT_ID": "proctor"}),
    ):
        with pytest.raises(SettingsError) as info:
            Settings.load(environ=issuer | given, env_file=None)
        assert info.value.key == missing and "required with PROCTOR_OIDC_ISSUER" in str(info.value)
    client = {"PROCTOR_OIDC_CLIENT_ID": "proctor", "PROCTOR_OIDC_CLIENT_SECRET": "c-secret~._"}
    s = Settings.load(
        environ=issuer
        | client
        | {
            "PROCTOR_OIDC_ALLOWED_DOMAINS": "School.Example, staff.school.example,,",
            "PROCTOR_OIDC_ADMIN_CLAIM": "groups=/proctor admins",
        },
        env_file=None,
    )
    assert s.oidc_allowed_domains == ("school.example", "staff.school.example")
    assert s.oidc_admin_rule == ("groups", "/proctor admins")
    assert "c-secret" not in repr(s) and s.oidc_client_secret.get_secret_value() == "c-secret~._"
    assert Settings.load(environ={"PROCTOR_OIDC_ADMIN_CLAIM": "is_admin"}, env_file=None).oidc_admin_rule == (
        "is_admin",
        None,
    )
    for loopback in ("http://127.0.0.1:5556/dex", "http://localhost:8080/realms/test", "http://[::1]:9000"):
        assert Settings.load(environ={"PROCTOR_OIDC_ISSUER": loopback} | client, env_file=None).oidc_issuer == loopback
    # Without an issuer nothing else is required: single sign-on is simply off.
    assert Settings.load(environ={}, env_file=None).oidc_issuer == ""


def test_environment_beats_env_file_beats_defaults(monkeypatch: pytest.MonkeyPatch, clean_start: Path) -> None:
    (clean_start / ".env").write_text(
        "PROCTOR_PORT=9000\nPROCTOR_ROOMS_PER_NODE='7'\n# comment\nexport PROCTOR_NODE_ID=n1\n"
    )
    monkeypatch.setenv("PROCTOR_PORT", "9100")
    for s in (Settings.load(), Settings()):
        assert s.port == 9100  # environment
        assert s.rooms_per_node == 7 and s.node_id == "n1"  # .env
        assert s.host == "127.0.0.1" and s.events_per_second == 20.0  # defaults
    # CLI flags (overrides) beat all three.
    assert Settings.load(port=9200).port == 9200
    # An explicit environment and file, as the test fixtures use it.
    assert Settings.load(environ={}, env_file=None).port == 8080
    assert Settings.load(environ={"PROCTOR_PORT": "9300"}, env_file=clean_start / ".env").rooms_per_node == 7


def test_a_bad_value_or_an_unknown_key_in_env_file_names_the_key(clean_start: Path) -> None:
    env_file = clean_start / ".env"
    env_file.write_text("PROCTOR_EVENTS_PER_SECOND=0\n")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert info.value.key == "EVENTS_PER_SECOND"
    env_file.write_text("OTHER_TOOL_URL=http://x\nPROCTOR_EVENTS_PER_SECOND=5\n")
    assert Settings.load().events_per_second == 5.0  # another tool's line is none of our business
    env_file.write_text("PROCTOR_EVENTS_PER_SECND=5\n")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert info.value.key == "EVENTS_PER_SECND" and "not a setting" in str(info.value)


def test_overrides_and_copies_are_validated_too(tmp_path: Path) -> None:
    s = Settings.load(environ={}, env_file=None, data_dir=tmp_path)
    with pytest.raises(SettingsError) as info:
        Settings.load(environ={}, env_file=None, port=0)
    assert info.value.key == "PORT"
    with pytest.raises(SettingsError) as info:
        s.replace(events_per_second=0)
    assert info.value.key == "EVENTS_PER_SECOND"
    with pytest.raises(SettingsError) as info:
        s.model_copy(update={"connect_burst": 0})
    assert info.value.key == "CONNECT_BURST"
    with pytest.raises(SettingsError) as info:
        s.replace(no_such_key=1)
    assert info.value.key == "NO_SUCH_KEY"
    changed = s.replace(writer_flush_ms=5, secret="k" * 40)
    assert changed.writer_flush_ms == 5.0 and changed.secret.get_secret_value() == "k" * 40
    assert s.writer_flush_ms == 2.0 and changed.data_dir == tmp_path


def test_settings_are_frozen() -> None:
    s = Settings.load(environ={}, env_file=None)
    with pytest.raises(ValidationError):
        s.port = 9000
    assert hash(s) == hash(Settings.load(environ={}, env_file=None))


def test_secrets_stay_out_of_repr_and_str() -> None:
    s = Settings.load(
        environ={
            "PROCTOR_SECRET": "s3cr3t-value-" + "x" * 32,
            "PROCTOR_DATABASE_URL": "postgresql://u:pw@h/db",
            "PROCTOR_REDIS_URL": "redis://:rpw@h:6379/0",
            "PROCTOR_ADMIN_TOKEN": "adm1n-token-value",
        },
        env_file=None,
    )
    for name in SECRET_KEYS:
        assert isinstance(getattr(s, name), SecretStr)
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "s3cr3t" not in text and "pw@" not in text and "rpw" not in text and "adm1n" not in text
    assert s.redis_url.get_secret_value() == "redis://:rpw@h:6379/0"


def test_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    s = Settings.load(environ={}, env_file=None, data_dir=tmp_path).with_runtime_defaults()
    again = Settings.load(environ={}, env_file=None, data_dir=tmp_path).with_runtime_defaults()
    assert len(s.secret.get_secret_value()) >= 32 and s.secret == again.secret
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert s.node_id.endswith("-8080")


def test_readme_lists_every_key() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert not missing, f"README.md's configuration table lacks {missing}"


def test_proctor_serve_refuses_a_bad_value_naming_the_key(clean_start: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    # A database URL that is valid but unreachable: whatever happens, no embedded Postgres starts.
    env |= {
        "PROCTOR_EVENTS_PER_SECOND": "0",
        "PROCTOR_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x",
        "PROCTOR_DATA_DIR": str(clean_start / "data"),
    }
    proctor = Path(sys.executable).with_name("proctor")
    proc = subprocess.run(
        [str(proctor), "serve", "--port", str(free_port())],
        env=env,
        cwd=clean_start,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "PROCTOR_EVENTS_PER_SECOND" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_tls_is_both_files_or_neither_and_makes_the_default_public_url_https() -> None:
    for given, missing in (("tls_cert", "TLS_KEY"), ("tls_key", "TLS_CERT")):
        with pytest.raises(SettingsError) as info:
            Settings.load(environ={}, env_file=None, **{given: "/etc/proctor/tls.pem"})
        assert info.value.key == missing and "set both" in str(info.value)
    plain = Settings.load(environ={}, env_file=None, port=8443)
    assert not plain.tls and plain.base_url == "http://127.0.0.1:8443"
    tls = Settings.load(environ={"PROCTOR_TLS_CERT": "~/c.pem", "PROCTOR_TLS_KEY": "/k.pem"}, env_file=None, port=8443)
    assert tls.tls and tls.base_url == "https://127.0.0.1:8443" and tls.tls_cert == str(Path("~/c.pem").expanduser())
    assert tls.replace(public_url="https://exam.example").base_url == "https://exam.example"
