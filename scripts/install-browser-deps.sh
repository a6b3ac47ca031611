#!/usr/bin/env bash
# Installs what the browser and load tests need, only what is missing: Debian's Chromium and
# its WebDriver, and Selenium for the python3 on PATH.
set -euo pipefail
"$(dirname "$0")/install-deps.sh" chromium chromium-driver
if ! python3 -c "import selenium" 2>/dev/null; then
    echo "installing: selenium (pip)" >&2
    # A system python that refuses pip (PEP 668) takes Debian's package instead.
    python3 -m pip install -q "selenium>=4.10,<5" || "$(dirname "$0")/install-deps.sh" python3-selenium
    python3 -c "import selenium" || { echo "selenium is not importable by $(command -v python3)" >&2; exit 1; }
fi
