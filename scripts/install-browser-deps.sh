#!/usr/bin/env bash
# Installs what the browser and load tests need, only what is missing: Debian's Chromium and
# its WebDriver, and Selenium for the python3 on PATH.
set -euo pipefail
packages=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! python3 -c "import selenium" 2>/dev/null; then
    echo "installing: selenium (pip)" >&2
    # A system python that refuses pip (PEP 668) takes Debian's package instead.
    if ! python3 -m pip install -q "selenium>=4.10,<5"; then
        sudo_cmd=""
        [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-selenium >/dev/null
    fi
    python3 -c "import selenium" || { echo "selenium is not importable by $(command -v python3)" >&2; exit 1; }
fi
