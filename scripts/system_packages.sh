#!/usr/bin/env bash
# Install the Debian packages the tests need and a virtualenv cannot hold: neutron-server (a real OpenStack
# Networking API, run on loopback by tests/neutron.py) and the shell linter, shellcheck.
# A no-op (silent) when both are installed. Otherwise one progress line; apt's output goes to a log that is
# shown only on failure. The package's post-install would start the daemon: a policy-rc.d that answers 101
# ("action forbidden") keeps it from doing so, and is removed afterwards (unless one was there already).
# Runs apt-get as root, through sudo when not root. POLICY_RC_D overrides the policy file's path (tests).
set -euo pipefail

packages=(neutron-server shellcheck)
policy="${POLICY_RC_D:-/usr/sbin/policy-rc.d}"

missing=()
for package in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
    as_root=(sudo)
fi

log="$(mktemp -t system-packages.XXXXXX.log)"
placed_policy=false
cleanup() {
    if [[ "$placed_policy" == true ]]; then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT

if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    placed_policy=true
fi

start=$SECONDS
printf 'system packages: installing %s (a few minutes on a new machine) ... ' "${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
    printf 'FAILED; the end of %s:\n' "$log"
    tail -n 30 "$log" >&2
    exit 1
fi
printf 'done in %d s\n' "$((SECONDS - start))"
rm -f "$log"
