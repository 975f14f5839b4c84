#!/usr/bin/env bash
# Installs the moto server (PyPI, a third-party emulator of AWS's APIs) into
# tools/moto-venv, idempotently: the tests check passwords live against Cognito's
# InitiateAuth as moto serves it. Prints its executable's path.
set -euo pipefail
exec "$(dirname "$0")/venv-tool.sh" moto-venv moto 5.2.5 "[server,cognitoidp]" moto_server
