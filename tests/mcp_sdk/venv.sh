#!/usr/bin/env bash
# Creates (or reuses) the venv holding the official MCP Python SDK that tests/mcp_sdk.rs drives `rstream mcp serve`
# with, and prints its python. The venv lives in the build tree ($RSTREAM_MCP_SDK_VENV, default
# target/tmp/mcp-sdk-venv): built in the run, rebuilt when requirements.txt changes, never cached elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${RSTREAM_MCP_SDK_VENV:-$here/../../target/tmp/mcp-sdk-venv}
requirements=$here/requirements.txt
stamp=$venv/.requirements
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
echo "$venv/bin/python"
