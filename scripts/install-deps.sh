#!/usr/bin/env bash
# Installs the Debian packages framepipe needs that are not yet installed.
# Usage: scripts/install-deps.sh [run|test]   (test adds what the test suite needs)
set -euo pipefail

packages=(libturbojpeg0-dev pkg-config)
if [[ "${1:-run}" == "test" ]]; then
    # openssl makes the TLS test's certificate; chromium drives the browser
    # tests; the cluster tests start their own redis-server on free ports;
    # the reverse-proxy tests run their own nginx in front of the relay;
    # the slow-link test shapes a veth pair with ip and tc (iproute2); the
    # Sentinel test runs redis-sentinel; the unit test runs systemd-analyze;
    # the standard-client tests watch MJPEG with ffmpeg, VLC and GStreamer.
    packages+=(openssl chromium chromium-driver python3-venv redis-server redis-sentinel nginx iproute2 systemd
               ffmpeg vlc-bin vlc-plugin-base gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        SUDO="sudo"
        echo "installing Debian packages with sudo (it may ask for your password): ${missing[*]}"
    else
        echo "installing Debian packages: ${missing[*]}"
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ "${1:-run}" == "test" ]]; then
    # Selenium from PyPI, pointed at Debian's chromium and chromedriver (it
    # downloads nothing), in a virtualenv so no system Python is touched.
    if [[ ! -x .build/browser-venv/bin/python ]]; then
        python3 -m venv .build/browser-venv
    fi
    .build/browser-venv/bin/python -m pip install --quiet --disable-pip-version-check -r Tests/Browser/requirements.txt
fi
