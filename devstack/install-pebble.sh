#!/usr/bin/env bash
# Put a Pebble >= 2.7 binary at DEST/bin/pebble (idempotent).
# Uses a `pebble` on PATH when it is recent enough, else downloads Debian unstable's
# `pebble` package with a private apt list (the system's apt configuration is not touched).
set -euo pipefail

MIN_VERSION=2.7
DEST="${1:?usage: install-pebble.sh DEST}"
TARGET="$DEST/bin/pebble"
WORKDIR=""
trap '[ -z "$WORKDIR" ] || rm -rf "$WORKDIR"' EXIT

# The numeric version a pebble binary reports ("2.10.0"), or nothing (Debian's build says "dev").
reported_version() {
    "$1" -version 2>&1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1 || true
}

# True when version $1 >= MIN_VERSION.
version_ok() {
    local major minor want_major want_minor
    IFS=. read -r major minor _ <<<"$1."
    IFS=. read -r want_major want_minor <<<"$MIN_VERSION"
    [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

# A build that reports no version ("dev") is judged by what 2.7 added: order profiles and
# the ARI `replaces` field with its alreadyReplaced error.
has_2_7_features() {
    grep -qaF 'json:"profile,omitempty"' "$1" && grep -qaF 'json:"replaces' "$1" \
        && grep -qaF 'urn:ietf:params:acme:error:alreadyReplaced' "$1"
}

# True when the binary at $1 is Pebble >= MIN_VERSION.
is_recent() {
    local v
    [ -x "$1" ] || return 1
    v="$(reported_version "$1")"
    if [ -n "$v" ]; then version_ok "$v"; else has_2_7_features "$1"; fi
}

describe() {
    local v
    v="$(reported_version "$1")"
    if [ -n "$v" ]; then echo "$v"
    elif [ -f "$1.deb-version" ]; then echo "$(cat "$1.deb-version") (Debian package)"
    else echo "a build without a version number, with the $MIN_VERSION features"
    fi
}

download_from_debian() {
    local apt_opts deb version
    WORKDIR="$(mktemp -d)"
    mkdir -p "$WORKDIR/lists/partial" "$WORKDIR/cache/archives/partial" "$WORKDIR/x"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main" \
        >"$WORKDIR/sources.list"
    # apt drops root to the _apt user for downloads: let it write into our private dirs.
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
        chmod 755 "$WORKDIR" && chown -R _apt "$WORKDIR/lists" "$WORKDIR/cache" && chown _apt "$WORKDIR"
    fi
    apt_opts=(-o "Dir::Etc::SourceList=$WORKDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$WORKDIR/lists" -o "Dir::Cache=$WORKDIR/cache")
    echo "install-pebble: downloading Debian unstable's pebble package from deb.debian.org" >&2
    apt-get "${apt_opts[@]}" -qq update >&2
    (cd "$WORKDIR" && apt-get "${apt_opts[@]}" -qq download pebble >&2)
    deb="$(ls "$WORKDIR"/pebble_*.deb 2>/dev/null | head -n1 || true)"
    [ -n "$deb" ] || { echo "install-pebble: apt-get download produced no pebble_*.deb" >&2; exit 1; }
    version="$(dpkg-deb -f "$deb" Version)"
    if ! dpkg --compare-versions "$version" ge "$MIN_VERSION"; then
        echo "install-pebble: Debian unstable ships pebble $version, certrenew needs >= $MIN_VERSION" >&2
        exit 1
    fi
    dpkg -x "$deb" "$WORKDIR/x"
    [ -f "$WORKDIR/x/usr/bin/pebble" ] || { echo "install-pebble: $deb has no usr/bin/pebble" >&2; exit 1; }
    install -m 0755 "$WORKDIR/x/usr/bin/pebble" "$TARGET"
    echo "$version" >"$TARGET.deb-version"
}

mkdir -p "$DEST/bin"
if is_recent "$TARGET"; then
    touch -h "$TARGET"  # newer than this script, so make considers it up to date
    echo "install-pebble: $TARGET is already Pebble $(describe "$TARGET")" >&2
    exit 0
fi
rm -f "$TARGET" "$TARGET.deb-version"

on_path="$(command -v pebble || true)"
if [ -n "$on_path" ] && is_recent "$on_path"; then
    ln -s "$(readlink -f "$on_path")" "$TARGET"
elif command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
    download_from_debian
else
    echo "install-pebble: no Pebble >= $MIN_VERSION on PATH and no apt-get/dpkg to fetch one;" \
         "install Pebble >= $MIN_VERSION on PATH (or set CERTRENEW_PEBBLE to its path)" >&2
    exit 1
fi

if ! is_recent "$TARGET"; then
    echo "install-pebble: $TARGET reports '$("$TARGET" -version 2>&1 | head -n1 || true)'" \
         "and lacks the Pebble $MIN_VERSION features (profiles, ARI replaces); certrenew needs Pebble >= $MIN_VERSION" >&2
    rm -f "$TARGET" "$TARGET.deb-version"
    exit 1
fi
echo "install-pebble: $TARGET is Pebble $(describe "$TARGET")" >&2
