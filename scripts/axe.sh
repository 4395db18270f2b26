#!/usr/bin/env bash
# axe-core for the accessibility check (tests/browser/test_accessibility.py),
# from the npm registry at the version pinned in tests/browser/axe/package-lock.json.
# Installed here, at setup time, into a git-ignored node_modules; the test
# injects the file from disk and never fetches it from a CDN while it runs.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser/axe"
pinned=$(node -p "require('./package-lock.json').packages['node_modules/axe-core'].version")
installed=$(node -p "try { require('./node_modules/axe-core/package.json').version } catch (e) { '' }")
if [ "$pinned" = "$installed" ]; then
    exit 0
fi
npm ci --no-audit --no-fund --silent
