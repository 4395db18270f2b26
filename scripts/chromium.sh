#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser/), installed only when
# missing. Playwright drives it through executable_path; it never downloads a
# browser of its own (no `playwright install`).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# A CJK font, so that the screenshots of the UI in Simplified Chinese
# (tests/browser/test_i18n_browser.py) show characters rather than boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq fonts-wqy-microhei >/dev/null
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
