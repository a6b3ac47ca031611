#!/usr/bin/env bash
# Installs Debian packages, only those that are missing: the ones given as arguments, or by
# default those the build needs.
set -euo pipefail
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(pkgconf libopenblas-dev libpng-dev libturbojpeg0-dev)
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
