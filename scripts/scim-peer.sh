#!/usr/bin/env bash
# Installs the SCIM 2.0 peer (PyPI scim2-server) into tools/scim-venv, idempotently:
# the tests and the benchmark push users into it. Prints its executable's path.
set -euo pipefail
exec "$(dirname "$0")/venv-tool.sh" scim-venv scim2-server 0.8.3 "" scim2-server
