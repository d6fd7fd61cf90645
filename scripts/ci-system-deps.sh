#!/usr/bin/env bash
# System packages the tests need, installed from Debian only when absent:
#   postgresql                 a real server the SQL and store tests start themselves (tests/servers.py)
#   chromium                   headless browser for checking rendered reports
#   a Java 17+ runtime         openjdk-17-jre-headless, or default-jre-headless where 17 is not packaged
# Idempotent and quiet: does nothing (and no apt-get update) when everything is there.
# Needs root, or sudo without a password.
set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

have_chromium() {
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null
}

have_java17() {
    command -v java >/dev/null || return 1
    local version
    version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
    [[ -n "$version" && "$version" -ge 17 ]]
}

missing=()
have_postgres || missing+=(postgresql)
have_chromium || missing+=(chromium)
have_java17 || missing+=(java)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ci-system-deps: missing ${missing[*]} and not root (no passwordless sudo); install them and rerun" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq

packages=()
for item in "${missing[@]}"; do
    if [[ "$item" == java ]]; then
        if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
            packages+=(openjdk-17-jre-headless)
        else
            packages+=(default-jre-headless)
        fi
    else
        packages+=("$item")
    fi
done

echo "ci-system-deps: installing ${packages[*]}" >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
