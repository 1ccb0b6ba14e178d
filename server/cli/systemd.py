"""`proctor systemd`: the systemd units that run N node processes on one machine.

`proctor@.service` is a template: instance `%i` is the process index and runs
`proctor serve --instance %i`, which listens on PROCTOR_PORT + %i (8080, 8081, ...) and so
gets its own node id (`host-port`). `proctor.target` wants `proctor@0` … `proctor@N-1`, so
`systemctl start proctor.target` starts them all and `systemctl stop proctor.target` stops
them (each drains: SIGTERM, then up to the shutdown timeout).

Settings come from the environment file (`/etc/proctor/env`, `KEY=value` lines, mode 600:
it holds secrets). More than one process needs a shared Postgres and Redis there
(PROCTOR_DATABASE_URL, PROCTOR_REDIS_URL) and one PROCTOR_SECRET for all of them — each
process would otherwise start its own embedded Postgres in the same data directory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The node stops within PROCTOR_SHUTDOWN_TIMEOUT_SECONDS or exits 1 (server/shutdown.py);
# systemd's own limit must be later, or it SIGKILLs a node that was about to say where it hung.
STOP_MARGIN_SECONDS = 15

SERVICE = """\
# Rendered by `proctor systemd`. One node process; %i is its index (port PROCTOR_PORT + %i).
[Unit]
Description=Proctor node %i
After=network-online.target
Wants=network-online.target
PartOf=proctor.target

[Service]
Type=exec
User={user}
Group={group}
Environment=PROCTOR_DATA_DIR={data_dir}
Environment=PROCTOR_SHUTDOWN_TIMEOUT_SECONDS={shutdown_timeout:g}
{env_file_line}ExecStart={executable} serve --instance %i
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
# After the node's own shutdown bound: a node that overruns it logs what it waits for and exits 1.
TimeoutStopSec={stop_timeout:g}
Restart=on-failure
RestartSec=2
# Every socket is a file descriptor: 20,000 clients need more than the default 1,024.
LimitNOFILE={nofile}
# Analysing nodes: MALLOC_ARENA_MAX=2 in the environment file kept RSS flat in a soak
# (docs/operations.md, Tuning); not set here while its cost in loop latency is unmeasured.

NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
ReadWritePaths={data_dir}

[Install]
WantedBy=proctor.target
"""

TARGET = """\
# Rendered by `proctor systemd`: every node process of this machine ({processes}).
[Unit]
Description=Proctor nodes ({processes} on this machine)
Wants={wants}
After={wants}

[Install]
WantedBy=multi-user.target
"""


class UnitError(ValueError):
    """Bad arguments for the units; the message says which."""


@dataclass(frozen=True)
class UnitOptions:
    processes: int
    user: str
    executable: Path
    data_dir: Path = Path("/var/lib/proctor")
    env_file: Path | None = Path("/etc/proctor/env")
    group: str = ""
    shutdown_timeout: float = 60.0
    nofile: int = 65536

    def check(self) -> None:
        if not 1 <= self.processes <= 256:
            raise UnitError("--processes must be 1..256")
        if not self.user or any(c.isspace() for c in self.user):
            raise UnitError("--user must be an account name")
        for name, path in (
            ("--data-dir", self.data_dir),
            ("--env-file", self.env_file),
            ("the proctor executable", self.executable),
        ):
            if path is not None and not path.is_absolute():
                raise UnitError(f"{name} must be an absolute path, got {path}")
            if path is not None and any(c.isspace() for c in str(path)):
                raise UnitError(f"{name} must not contain spaces, got {path}")
        if self.shutdown_timeout <= 0:
            raise UnitError("--shutdown-timeout must be positive")


def render_units(options: UnitOptions) -> dict[str, str]:
    """File name → text: the template service and the target."""
    options.check()
    # "-": a missing file is not an error, so a node with no secrets to set still starts.
    env_line = f"EnvironmentFile=-{options.env_file}\n" if options.env_file else ""
    service = SERVICE.format(
        user=options.user,
        group=options.group or options.user,
        data_dir=options.data_dir,
        env_file_line=env_line,
        executable=options.executable,
        shutdown_timeout=options.shutdown_timeout,
        stop_timeout=options.shutdown_timeout + STOP_MARGIN_SECONDS,
        nofile=options.nofile,
    )
    wants = " ".join(f"proctor@{i}.service" for i in range(options.processes))
    return {"proctor@.service": service, "proctor.target": TARGET.format(processes=options.processes, wants=wants)}


def proctor_executable() -> Path:
    """The `proctor` script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "proctor"
    if beside.exists():
        return beside.absolute()
    found = shutil.which("proctor")
    if found is None:
        raise UnitError("cannot find the proctor executable; give --executable")
    return Path(found).absolute()


def cmd_systemd(args: argparse.Namespace) -> int:
    try:
        options = UnitOptions(
            processes=args.processes,
            user=args.user,
            group=args.group or "",
            executable=Path(args.executable) if args.executable else proctor_executable(),
            data_dir=Path(args.data_dir),
            env_file=Path(args.env_file) if args.env_file else None,
            shutdown_timeout=args.shutdown_timeout,
        )
        units = render_units(options)
    except UnitError as exc:
        print(f"systemd: {exc}", file=sys.stderr)
        return 2
    if str(options.executable).startswith(("/home/", "/root/")):
        print(
            f"systemd: ProtectHome=yes hides {options.executable} from the service; install proctor "
            "outside /home and /root (e.g. a venv in /opt/proctor)",
            file=sys.stderr,
        )
    if args.processes > 1:
        print(
            "systemd: several processes need PROCTOR_DATABASE_URL, PROCTOR_REDIS_URL and PROCTOR_SECRET "
            f"in {options.env_file or 'their environment'}",
            file=sys.stderr,
        )
    if not args.out:
        for name, text in units.items():
            sys.stdout.write(f"# --- {name}\n{text}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (out / name).write_text(text)
        print(out / name)
    return 0


def add_systemd_command(sub: Any) -> None:
    unit = sub.add_parser("systemd", help="print (or write) systemd units for N node processes")
    unit.add_argument("--processes", type=int, default=1, help="node processes on this machine (ports base+i)")
    unit.add_argument("--user", required=True, help="the account the nodes run as")
    unit.add_argument("--group", help="its group (default: same as --user)")
    unit.add_argument("--data-dir", default="/var/lib/proctor", help="PROCTOR_DATA_DIR, the only writable path")
    unit.add_argument("--env-file", default="/etc/proctor/env", help="KEY=value settings ('' for none)")
    unit.add_argument("--executable", help="absolute path of proctor (default: this installation's)")
    unit.add_argument(
        "--shutdown-timeout",
        type=float,
        default=60.0,
        help="PROCTOR_SHUTDOWN_TIMEOUT_SECONDS; TimeoutStopSec is this + 15",
    )
    unit.add_argument("--out", help="write the files into this directory instead of printing them")
    unit.set_defaults(func=cmd_systemd)
