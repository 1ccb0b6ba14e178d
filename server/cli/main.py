"""The `proctor` command: serve, migrate, token, cert, and the cluster commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from server.tls import ServerTLS

logger = logging.getLogger("proctor")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = Path(value) if name == "data_dir" else value
    settings = Settings.load(**overrides)
    instance = getattr(args, "instance", None)
    if instance:  # process i of a machine's units (server/cli/systemd.py) listens on port + i
        settings = Settings.load(**{**overrides, "port": settings.port + instance})
    return settings


async def _serve(settings: Settings, tls: ServerTLS | None) -> int:
    """Run a node until SIGINT/SIGTERM; the exit status says whether it stopped in time."""
    from aiohttp import web

    from server.app import create_app
    from server.keys import PLACEMENT, SETTINGS
    from server.lifecycle import ensure_admin_token_file
    from server.shutdown import bounded, cleanup_generators
    from server.tls import reload_on_sighup

    from .users import print_setup_link

    app = create_app(settings)
    settings = app[SETTINGS]
    # Clients were told to go before this (drain): a socket still open after 3 s is a dead peer.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=3)
    await runner.setup()
    # Signals before the site listens: once /readyz answers, SIGTERM must drain and SIGHUP
    # must reload (their default actions would end the node at once).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reload_on_sighup(loop, tls)
    ssl_context = tls.context if tls is not None else None
    site = web.TCPSite(runner, settings.host, settings.port, backlog=2048, ssl_context=ssl_context)
    await site.start()
    token_path = ensure_admin_token_file(app)
    if token_path is not None:
        from server.logs import redact_also

        redact_also(token_path.read_text().strip())
        print(f"admin token: {token_path}", flush=True)
    else:
        print("admin token: from PROCTOR_ADMIN_TOKEN", flush=True)
    scheme = "https" if tls is not None else "http"
    print(f"proctor node {settings.node_id} listening on {scheme}://{settings.host}:{settings.port}", flush=True)
    if tls is not None:
        print(f"TLS certificate: {tls.certificate} (SIGHUP reloads it)", flush=True)
    print(f"public URL (invite links): {settings.base_url}", flush=True)
    await print_setup_link(app)
    if settings.gc_tuning:
        from server.collector import tune_gc

        tune_gc()

    await stop.wait()
    logger.info("shutting down")
    app[PLACEMENT].draining = True
    # Order (uvicorn's): stop accepting, tell clients, flush writers, then the cleanup contexts.
    if not await bounded(
        runner.cleanup(), settings.shutdown_timeout_seconds, "the stop", generators=cleanup_generators(app)
    ):
        return 1
    logger.info("stopped")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from server.logs import configure_logging

    settings = _settings(args)
    if args.processes is not None:
        from .cluster import ClusterError
        from .service import run_service

        # The supervisor's own lines; each node it starts configures its own logging.
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return run_service(
                settings,
                processes=args.processes,
                front=args.front,
                balance=args.balance,
                node_ports=args.node_ports,
                node_host=args.node_host,
            )
        except ClusterError as exc:
            print(f"serve: {exc}", file=sys.stderr)
            return 1
    # Runtime defaults first: the log lines name the node, and the secret read from its
    # file is redacted from them.
    settings = settings.with_runtime_defaults()
    configure_logging(settings)
    from server.tls import ServerTLS

    # Before anything starts: a bad certificate stops start-up with the setting's name.
    tls = ServerTLS.from_settings(settings)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_serve(settings, tls))
    return uvloop.run(_serve(settings, tls))


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncpg

    from rooms.store.migrate import migrate
    from server.embedded_pg import database_dsn

    settings = _settings(args)

    async def run() -> list[str]:
        async with database_dsn(settings.database_url.get_secret_value(), settings.data_dir) as dsn:
            conn = await asyncpg.connect(dsn)
            try:
                return await migrate(conn)
            finally:
                await conn.close()

    applied = asyncio.run(run())
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from rooms.tokens import TokenService

    settings = _settings(args).with_runtime_defaults()
    tokens = TokenService(settings.secret.get_secret_value(), admin_token=settings.admin_token.get_secret_value())
    ttl = None if args.ttl_hours <= 0 else args.ttl_hours * 3600
    rooms = tuple(r for r in (args.room or []) if r)
    if args.role == "teacher" and not args.sub:
        print("a teacher token needs --sub (the teacher's id)", file=sys.stderr)
        return 2
    print(tokens.mint(args.role, args.sub or "admin", name=args.name or "", rooms=rooms, ttl_seconds=ttl))
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    from .certs import CertError, Subjects, instructions, issue

    if not args.self_signed:
        print(
            "cert: only --self-signed is supported (a local CA for a hall without a domain name); for a public "
            "name use ACME (certbot), see docs/operations.md, HTTPS",
            file=sys.stderr,
        )
        return 2
    settings = _settings(args)
    directory = Path(args.out) if args.out else settings.data_dir / "tls"
    try:
        issued = issue(directory, Subjects.parse(args.name or [], args.ip or []), days=args.days)
    except (CertError, OSError) as exc:
        print(f"cert: {exc}", file=sys.stderr)
        return 2
    print(instructions(issued, settings.port), end="")
    return 0


# -- many nodes (docs/cluster.md) ------------------------------------------------------------


def cmd_nginx_conf(args: argparse.Namespace) -> int:
    from nginx.render import ConfigError, Node, SiteTLS, render_site, render_standalone

    try:
        nodes = [Node.parse(n) for n in args.node]
        tls = None
        if args.tls_cert or args.tls_key:
            tls = SiteTLS(
                cert=str(Path(args.tls_cert).absolute()) if args.tls_cert else "",
                key=str(Path(args.tls_key).absolute()) if args.tls_key else "",
                http_listen=args.http_listen,
                ocsp_stapling=args.ocsp_stapling,
                resolver=args.resolver or "",
            )
        elif args.ocsp_stapling or args.http_listen != "80":
            raise ConfigError("--ocsp-stapling and --http-listen go with --tls-cert/--tls-key")
        listen = args.listen or ("443" if tls is not None else "80")
        site = render_site(
            nodes,
            listen=listen,
            server_name=args.server_name,
            balance=args.balance,
            max_fails=args.max_fails,
            fail_timeout=args.fail_timeout,
            tls=tls,
        )
        text = render_standalone(Path(args.standalone), site) if args.standalone else site
    except ConfigError as exc:
        print(f"nginx-conf: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from .cluster import ClusterError, add_node, run_cluster

    try:
        if args.add_node:
            return add_node(Path(args.add_node))
        root = Path(args.dir) if args.dir else None
        return run_cluster(
            args.nodes, root=root, port=args.port, balance=args.balance, rooms_per_node=args.rooms_per_node
        )
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1


def cmd_drain(args: argparse.Namespace) -> int:
    import os
    import time

    from .cluster import http_json

    token = args.token or os.environ.get("PROCTOR_ADMIN_TOKEN", "")
    if not token and args.data_dir:
        token_file = Path(args.data_dir) / "admin-token"
        token = token_file.read_text().strip() if token_file.exists() else ""
    if not token:
        print("drain: give --token, PROCTOR_ADMIN_TOKEN or --data-dir (its admin-token)", file=sys.stderr)
        return 2
    base = args.node if args.node.startswith("http") else f"http://{args.node}"
    try:
        status, body = http_json(base + "/admin/drain", method="POST", token=token)
    except OSError as exc:
        print(f"drain: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    if status != 202:
        print(f"drain: {base} answered {status}: {body}", file=sys.stderr)
        return 1
    print(f"{body['node']} is draining ({body['clients']} clients)", flush=True)
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            http_json(base + "/healthz", timeout=1)
        except OSError:
            print("drained and stopped")
            return 0
        time.sleep(0.2)
    print(f"drain: {base} still up after {args.timeout}s", file=sys.stderr)
    return 1


def add_cluster_commands(sub: Any) -> None:
    conf = sub.add_parser("nginx-conf", help="render the Nginx config for a set of nodes")
    conf.add_argument("--node", action="append", required=True, metavar="HOST:PORT", help="a node (repeat)")
    conf.add_argument("--listen", help="Nginx listen address/port (default 80, or 443 with --tls-cert)")
    conf.add_argument("--server-name", default="_", help="server_name (default _)")
    conf.add_argument(
        "--balance",
        choices=["ip_hash", "hash"],
        default="ip_hash",
        help="ip_hash (first three IPv4 octets) or hash $remote_addr consistent",
    )
    conf.add_argument("--max-fails", type=int, default=1)
    conf.add_argument("--fail-timeout", type=int, default=10, help="seconds")
    conf.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="terminate TLS: certificate (full chain), e.g. "
        "/etc/letsencrypt/live/HOST/fullchain.pem; adds an HTTP->HTTPS redirect and HSTS",
    )
    conf.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (with --tls-cert)")
    conf.add_argument(
        "--http-listen", default="80", help="with TLS: the plain-HTTP redirect server's listen (default 80; off: none)"
    )
    conf.add_argument("--ocsp-stapling", action="store_true", help="with TLS: staple OCSP answers (needs --resolver)")
    conf.add_argument("--resolver", metavar="ADDR", help="DNS server(s) for OCSP stapling, e.g. 127.0.0.53")
    conf.add_argument("--standalone", metavar="DIR", help="a whole nginx.conf with every path under DIR")
    conf.add_argument("-o", "--output", help="write here instead of stdout")
    conf.set_defaults(func=cmd_nginx_conf)

    clu = sub.add_parser("cluster", help="Redis, Postgres, N nodes and Nginx on loopback (Ctrl-C stops)")
    clu.add_argument("--nodes", type=int, default=3)
    clu.add_argument("--port", type=int, default=8080, help="Nginx port (default 8080)")
    clu.add_argument("--dir", help="directory for every file (default: a new temp dir)")
    clu.add_argument("--balance", choices=["ip_hash", "hash"], default="ip_hash")
    clu.add_argument("--rooms-per-node", type=int, help="PROCTOR_ROOMS_PER_NODE for the nodes")
    clu.add_argument("--add-node", metavar="DIR", help="add one node to the running cluster in DIR")
    clu.set_defaults(func=cmd_cluster)

    dr = sub.add_parser("drain", help="drain a node: hand its rooms over, move its clients, exit")
    dr.add_argument("--node", required=True, help="the node's own HOST:PORT (not Nginx)")
    dr.add_argument("--token", help="admin token (or PROCTOR_ADMIN_TOKEN)")
    dr.add_argument("--data-dir", help="the node's data dir (reads its admin-token)")
    dr.add_argument("--wait", action="store_true", help="wait until the node has exited")
    dr.add_argument("--timeout", type=float, default=120)
    dr.set_defaults(func=cmd_drain)


def cmd_student(args: argparse.Namespace) -> int:
    import json

    import asyncpg

    from rooms.errors import NotFound
    from rooms.store.audit import AuditLog
    from rooms.store.privacy import StudentData
    from rooms.tokens import Claims
    from server.embedded_pg import database_dsn

    settings = _settings(args)
    operator = Claims(role="admin", sub="cli")

    async def run() -> object:
        async with database_dsn(settings.database_url.get_secret_value(), settings.data_dir) as dsn:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            try:
                data = StudentData(pool)
                result: object
                if args.action == "export":
                    result = await data.export(args.student_id)
                else:
                    result = await data.erase(args.student_id)
                await AuditLog(pool).record(operator, f"student.{args.action}", "student", args.student_id)
                return result
            finally:
                await pool.close()

    try:
        result = asyncio.run(run())
    except NotFound as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proctor", description="Proctor server: real-time proctoring and classroom node."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a node (embedded Postgres unless PROCTOR_DATABASE_URL is set)")
    serve.add_argument("--host", help="listen address (PROCTOR_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PROCTOR_PORT, default 8080)")
    serve.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    serve.add_argument("--instance", type=int, help="process index on this machine: listen on the port + this")
    # One machine, every core (server/cli/service.py, docs/operations.md).
    serve.add_argument(
        "--processes",
        metavar="N|auto",
        help="run N node processes behind Nginx on --host/--port as one service "
        "(auto: one per core); needs redis-server and nginx",
    )
    serve.add_argument(
        "--front",
        choices=["nginx", "none"],
        default="nginx",
        help="with --processes: start Nginx (default) or print its config for yours",
    )
    serve.add_argument(
        "--balance",
        choices=["hash", "ip_hash"],
        default="hash",
        help="with --processes: hash $remote_addr consistent (default) or ip_hash",
    )
    serve.add_argument(
        "--node-ports",
        type=int,
        metavar="FIRST",
        help="with --processes: the nodes listen on FIRST, FIRST+1, ... (default --port + 1)",
    )
    serve.add_argument(
        "--node-host", default="127.0.0.1", help="with --processes: the nodes' listen address (default 127.0.0.1)"
    )
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    mig.set_defaults(func=cmd_migrate)

    tok = sub.add_parser("token", help="mint an admin or teacher token")
    tok.add_argument("--role", choices=["admin", "teacher"], default="admin")
    tok.add_argument("--sub", help="who the token is for (teacher id)")
    tok.add_argument("--name", help="display name")
    tok.add_argument("--room", action="append", help="a room the teacher may see (repeatable)")
    tok.add_argument("--ttl-hours", type=float, default=12, help="lifetime; 0 means no expiry")
    tok.add_argument("--data-dir", help="data directory holding the signing secret")
    tok.set_defaults(func=cmd_token)

    cert = sub.add_parser("cert", help="make a local CA and a TLS certificate for a hall without a domain name")
    cert.add_argument("--self-signed", action="store_true", help="issue from a local CA kept in --out (reused)")
    cert.add_argument("--name", action="append", metavar="HOST", help="a host name students type (repeat)")
    cert.add_argument("--ip", action="append", metavar="ADDR", help="an address students type (repeat)")
    cert.add_argument("--out", metavar="DIR", help="where the files go (default DATA_DIR/tls)")
    cert.add_argument("--days", type=int, default=365, help="server certificate lifetime (default 365, max 825)")
    cert.add_argument("--port", type=int, help="the node's port, for the URL printed (PROCTOR_PORT)")
    cert.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    cert.set_defaults(func=cmd_cert)

    stu = sub.add_parser("student", help="export or erase everything stored about one student")
    stu.add_argument("action", choices=["export", "erase"])
    stu.add_argument("student_id")
    stu.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    stu.set_defaults(func=cmd_student)
    add_cluster_commands(sub)

    from .systemd import add_systemd_command

    add_systemd_command(sub)

    from .backup import add_backup_commands

    add_backup_commands(sub, _settings)

    from .lti import add_lti_commands
    from .users import add_user_commands

    add_user_commands(sub)
    add_lti_commands(sub)  # step 11 (docs/lti.md)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
