#!/usr/bin/env bash
# Installs the OpenTelemetry Python and JS peers that tests/tests/interop.rs
# runs hello-svc against, at the versions pinned in tests/interop/, into
# target/interop/. Idempotent. When a registry cannot be reached it says so in
# one line and carries on: the interop tests then report themselves skipped,
# or, under CI=true, fail.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

dir=target/interop
mkdir -p "$dir"

python_ok=$dir/.python-$(sha256sum tests/interop/requirements.txt | cut -c1-16)
if [ ! -e "$python_ok" ]; then
	if python3 -m venv "$dir/venv" >/dev/null 2>&1 &&
		"$dir/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt >"$dir/pip.log" 2>&1; then
		touch "$python_ok"
	else
		echo "interop: cannot install the Python peer (see $dir/pip.log); its tests will be skipped (or fail under CI=true)" >&2
	fi
fi

node_ok=$dir/.node-$(sha256sum tests/interop/package.json | cut -c1-16)
if [ ! -e "$node_ok" ]; then
	mkdir -p "$dir/node"
	cp tests/interop/package.json "$dir/node/"
	if command -v npm >/dev/null 2>&1 &&
		npm install --prefix "$dir/node" --no-audit --no-fund --no-package-lock --silent >"$dir/npm.log" 2>&1; then
		touch "$node_ok"
	else
		echo "interop: cannot install the Node peer (see $dir/npm.log); its tests will be skipped (or fail under CI=true)" >&2
	fi
fi
exit 0
