#!/bin/sh
# Makes sure Debian's chromium is installed at /usr/bin/chromium (the viewer's
# browser test drives it through playwright-core; playwright's own browser
# download does not work here). Installs it with apt when missing.
set -eu
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-browser: /usr/bin/chromium is missing and we are not root (install the chromium package)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-browser: installing chromium with apt-get" >&2
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium >&2
test -x /usr/bin/chromium
