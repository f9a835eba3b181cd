#!/usr/bin/env bash
# Licenses, banned/duplicate crates and sources of every dependency, as
# deny.toml says: `cargo deny check bans licenses sources`. Installs the
# pinned cargo-deny if it is missing or another version. The advisories
# check is left out: it fetches the RustSec database, and CI has no network
# beyond the package registries.
set -euo pipefail
version="0.20.2"
cd "$(dirname "$0")/.."
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]; then
    echo "== cargo install cargo-deny $version"
    cargo install cargo-deny --locked --version "$version" --quiet
fi
cargo deny --log-level warn check bans licenses sources
