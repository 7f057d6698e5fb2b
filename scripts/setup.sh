#!/usr/bin/env bash
# Installs what the test suites need and a fresh Debian 12 machine may lack:
# Ruby with ffi, minitest and rake (Ruby binding), cmake and pkg-config (C
# library), pytest (Python binding). Fast and silent when all is present.
set -euo pipefail
need=()
command -v ruby >/dev/null || need+=(ruby ruby-dev)
ruby -e 'require "ffi"' 2>/dev/null || need+=(ruby-ffi)
ruby -e 'require "minitest"' 2>/dev/null || need+=(ruby-minitest)
command -v rake >/dev/null || need+=(rake)
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cc >/dev/null || need+=(gcc g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
go mod download
