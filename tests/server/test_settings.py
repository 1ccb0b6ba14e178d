from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError


def test_environment_beats_env_file_beats_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PROCTOR_PORT=9000\nPROCTOR_ROOMS_PER_NODE='7'\n# comment\nexport PROCTOR_NODE_ID=n1\n")
    s = Settings.load(environ={"PROCTOR_PORT": "9100"}, env_file=env_file)
    assert s.port == 9100
    assert s.rooms_per_node == 7
    assert s.node_id == "n1"
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("key", "value"),
    [("PORT", "eighty"), ("PORT", "70000"), ("ROOMS_PER_NODE", "0"), ("DATABASE_URL", "mysql://x"),
     ("REDIS_URL", "http://x"), ("GC_TUNING", "maybe"), ("LOG_LEVEL", "LOUD")],
)
def test_bad_value_names_the_key(key: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(environ={f"PROCTOR_{key}": value}, env_file=None)
    assert f"PROCTOR_{key}" in str(info.value)


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    s = Settings.load(
        environ={"PROCTOR_SECRET": "s3cr3t-value", "PROCTOR_DATABASE_URL": "postgresql://u:pw@h/db",
                 "PROCTOR_ADMIN_TOKEN": "adm1n"},
        env_file=None,
    )
    text = repr(s)
    assert "s3cr3t" not in text and "pw@" not in text and "adm1n" not in text


def test_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    s = Settings.load(environ={}, env_file=None, data_dir=tmp_path).with_runtime_defaults()
    again = Settings.load(environ={}, env_file=None, data_dir=tmp_path).with_runtime_defaults()
    assert len(s.secret) >= 32 and s.secret == again.secret
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
