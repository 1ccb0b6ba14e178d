"""`proctor systemd`: the units it writes are ones systemd accepts, with the hardening asked for.

`systemd-analyze verify` (Debian package `systemd`; ./install.sh test installs it) loads the
units as systemd would, without a running systemd: it reports unknown keys and bad values as
warnings and a missing ExecStart binary as an error, so the test demands a clean run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli.main import _settings, build_parser

PROCTOR = Path(sys.executable).parent / "proctor"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (./install.sh test does)")
    return found


def render(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROCTOR), "systemd", "--user", "proctor", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def keys(path: Path) -> dict[str, list[str]]:
    """`Section.Key` → values (systemd allows a key more than once, configparser does not)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(f"{section}.{key}", []).append(value)
    return found


def verify(directory: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", *units], cwd=directory, capture_output=True, text=True, timeout=60
    )


def test_units_for_three_processes_pass_systemd_verify(tmp_path: Path) -> None:
    proc = render(tmp_path, "--processes", "3", "--data-dir", "/srv/proctor", "--shutdown-timeout", "90")
    assert proc.returncode == 0, proc.stderr
    assert "PROCTOR_REDIS_URL" in proc.stderr  # several processes: the warning about shared settings
    service = keys(tmp_path / "proctor@.service")
    assert service["Service.ExecStart"] == [f"{PROCTOR.absolute()} serve --instance %i"]
    assert Path(service["Service.ExecStart"][0].split()[0]).is_absolute()
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/srv/proctor",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "User": "proctor",
        "EnvironmentFile": "-/etc/proctor/env",
    }
    for key, value in expected.items():
        assert service[f"Service.{key}"] == [value], key
    assert int(service["Service.LimitNOFILE"][0]) >= 65536
    assert float(service["Service.TimeoutStopSec"][0]) > 90  # after the node's own bound
    assert "PROCTOR_SHUTDOWN_TIMEOUT_SECONDS=90" in service["Service.Environment"]
    assert "PROCTOR_DATA_DIR=/srv/proctor" in service["Service.Environment"]
    target = keys(tmp_path / "proctor.target")
    assert target["Unit.Wants"] == ["proctor@0.service proctor@1.service proctor@2.service"]

    checked = verify(tmp_path, "proctor@0.service", "proctor@2.service", "proctor.target")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr  # not even a warning


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check can fail: a missing binary is an error, a misspelt key a warning."""
    assert render(tmp_path, "--executable", "/nonexistent/proctor").returncode == 0
    missing = verify(tmp_path, "proctor@0.service")
    assert missing.returncode != 0 and "/nonexistent/proctor" in missing.stderr
    assert render(tmp_path).returncode == 0
    unit = tmp_path / "proctor@.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    misspelt = verify(tmp_path, "proctor@0.service")
    assert "NoNewPrivilege" in misspelt.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processes", "0"], "--processes"),
        (["--data-dir", "relative/dir"], "--data-dir must be an absolute path"),
        (["--executable", "proctor"], "must be an absolute path"),
        (["--shutdown-timeout", "0"], "--shutdown-timeout"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    proc = render(tmp_path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not list(tmp_path.iterdir())


def test_printed_without_out(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PROCTOR), "systemd", "--user", "proctor", "--env-file", ""], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "# --- proctor@.service" in proc.stdout and "# --- proctor.target" in proc.stdout
    assert "EnvironmentFile" not in proc.stdout


def test_instance_i_listens_on_the_port_plus_i(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv("PROCTOR_PORT", "9000")
    assert _settings(build_parser().parse_args(["serve", "--instance", "2"])).port == 9002
    assert _settings(build_parser().parse_args(["serve", "--instance", "0"])).port == 9000
    assert _settings(build_parser().parse_args(["serve", "--port", "7000", "--instance", "1"])).port == 7001
