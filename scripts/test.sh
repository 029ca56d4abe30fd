#!/usr/bin/env bash
# Runs kmigrate's whole test suite. As root on Debian it first installs what
# the tests need: a registry (docker-registry), a static busybox for the base
# image, a Docker Engine (docker.io) for the engine tests, and Buildah (with
# podman) for the Buildah target and the builder's differential test. Tests start
# their own servers on 127.0.0.1; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
# Buildah runs the GitLab Buildah target's output and is the reference
# the embedded builder is compared with; podman comes with the same stack.
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v podman >/dev/null 2>&1 || missing+=(podman)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  else
    echo "not installed: ${missing[*]} (run as root to install); tests needing them fail under CI=true" >&2
  fi
fi

# The pre-commit hook test runs the real pre-commit, from PyPI.
if ! command -v pre-commit >/dev/null 2>&1; then
  if command -v python3 >/dev/null 2>&1; then
    echo "installing: pre-commit (PyPI)" >&2
    python3 -m pip install -q pre-commit >&2 \
      || python3 -m pip install -q --break-system-packages pre-commit >&2 \
      || echo "could not install pre-commit; its test fails under CI=true" >&2
    # pyenv only sees new console scripts after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash >&2 || true; fi
  else
    echo "not installed: pre-commit (needs python3); its test fails under CI=true" >&2
  fi
fi

cargo test --locked "$@"
