#!/usr/bin/env bash
# Install what Node.js and `provided` functions need when the machine lacks it: Node.js
# and npm (the nodejs runtimes, npm packages at deploy) and curl (shell-script custom
# runtimes), from Debian's packages. Then fill the tests' cache of npm packages
# (.cache/node, or TRIGGERFISH_NODE_CACHE): the AWS SDK v3 bundle of Node.js functions,
# installed by `triggerfish runtimes install-sdk`, and aws-sdk v2 as examples/s3-node
# locks it, in an npm cache of its own that tests give the server's npm. Safe to run
# again: what is installed is left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-node: node $(node --version), npm $(npm --version) and curl are installed"
else
  echo "install-node: installing ${missing[*]} from Debian's packages"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-node: node $(node --version), npm $(npm --version)"
fi

cache="${TRIGGERFISH_NODE_CACHE:-$root/.cache/node}"
python="${TRIGGERFISH_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$cache"

if [ -f "$cache/sdk/triggerfish-sdk.json" ]; then
  echo "install-node: the AWS SDK v3 bundle is in $cache/sdk"
elif [ -x "$python" ]; then
  "$python" -m triggerfish runtimes install-sdk --into "$cache/sdk" --quiet
else
  echo "install-node: no $python yet (make install): the AWS SDK v3 bundle is not installed"
fi

v2="$cache/aws-sdk-v2"
if [ -f "$v2/node_modules/aws-sdk/package.json" ]; then
  echo "install-node: aws-sdk v2 is in $v2"
else
  echo "install-node: installing aws-sdk v2 into $v2"
  rm -rf "$v2"
  mkdir -p "$v2"
  cp "$root/examples/s3-node/process-upload/package.json" \
    "$root/examples/s3-node/process-upload/package-lock.json" "$v2/"
  (cd "$v2" && npm ci --omit=dev --no-audit --no-fund --no-update-notifier \
    --cache "$cache/npm" >/dev/null)
fi

# Sample services of the Serverless Framework, as their npm packages ship them: the
# tests deploy their serverless.yml unmodified (tests/support/serverless_samples.py).
samples="$cache/serverless-samples"
for package in serverless@3.0.0 serverless-offline-aws-eventbridge@2.2.4; do
  folder="$samples/${package%@*}"
  if [ -f "$folder/package/package.json" ]; then
    echo "install-node: $package is in $folder"
  else
    echo "install-node: unpacking $package into $folder"
    rm -rf "$folder"
    mkdir -p "$folder"
    tarball="$(cd "$folder" && npm pack "$package" --silent --no-update-notifier \
      --cache "$cache/npm")"
    tar xzf "$folder/$tarball" -C "$folder" 2>/dev/null
    rm -f "$folder/$tarball"
  fi
done

# AWS's Durable Execution SDK for Node.js, whose handlers the durable-function tests run
# unmodified (tests/e2e/test_durable_node.py).
durable="$cache/durable-sdk-js"
if [ -f "$durable/node_modules/@aws/durable-execution-sdk-js/package.json" ]; then
  echo "install-node: @aws/durable-execution-sdk-js is in $durable"
else
  echo "install-node: installing @aws/durable-execution-sdk-js into $durable"
  mkdir -p "$durable"
  (cd "$durable" && npm install --no-audit --no-fund --no-update-notifier --no-save \
    --cache "$cache/npm" @aws/durable-execution-sdk-js@2.4.0 >/dev/null 2>&1)
fi
