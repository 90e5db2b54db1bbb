#!/usr/bin/env bash
# Install what Node.js and `provided` functions need when the machine lacks it: Node.js
# and npm (the nodejs runtimes, npm packages at deploy) and curl (shell-script custom
# runtimes), from Debian's packages. Safe to run again: installed tools are left alone.
set -euo pipefail

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-node: node $(node --version), npm $(npm --version) and curl are installed"
  exit 0
fi

echo "install-node: installing ${missing[*]} from Debian's packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-node: node $(node --version), npm $(npm --version)"
