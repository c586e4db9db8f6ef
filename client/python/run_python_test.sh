#!/usr/bin/env bash
# Runs a Python test with Debian's python3 (which has python3-grpcio); the pyenv
# python3 that may come first on PATH does not.
set -euo pipefail
exec /usr/bin/python3 "$@"
