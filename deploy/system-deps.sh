#!/usr/bin/env bash
# Installs the system packages (Debian/Ubuntu) behind the commands named, e.g. `java mvn`, when
# one is missing. When all are there it does nothing and asks apt nothing: `make` runs it often.
# `python-headers` names no command: $PYTHON's C headers (Python.h), which compiling the core needs.
set -euo pipefail

declare -A package=(
  [java]=openjdk-17-jre-headless  # the local Kafka broker
  [mvn]=maven                     # its jars, from Maven Central
  [kcat]=kcat                     # a non-Python subscriber in the tests
  [promtool]=prometheus           # promtool checks; a real scraper in the tests
  [chromium]=chromium             # the dashboard's browser test
  [dockerd]=docker.io             # the compose test's Docker engine (and client)
  [debootstrap]=debootstrap       # its Debian base image, where none can be pulled
  [openssl]=openssl               # a throwaway CA and certificate for the TLS test
  [gcc]=gcc                       # compiles the engine's core (setup.py: mypyc)
  [python-headers]=python3-dev    # ... against this Python's headers (Debian's Python lacks them)
)

present() {
  if [[ $1 == python-headers ]]; then
    "${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
  else
    # /usr/sbin: where dockerd and debootstrap are, and not on a non-root user's PATH.
    command -v "$1" >/dev/null || [[ -x /usr/sbin/$1 ]]
  fi
}

tools=() missing=()
for tool in "$@"; do
  present "$tool" || { tools+=("$tool"); missing+=("${package[$tool]}"); }
done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  echo "system-deps: ${tools[*]} not found: install ${missing[*]} (Debian's names) or their like" >&2
  exit 1
fi
as_root=()
((EUID == 0)) || as_root=(sudo)
echo "system-deps: ${tools[*]} not found: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
