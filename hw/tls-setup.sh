#!/bin/bash
# The page over HTTPS on an installed dock (README "HTTPS"), called by hw/install.sh:
#   hw/tls-setup.sh ROOT      ROOT "/" on the dock, or the installer's scratch root
# 1. the dock's own CA (kept if there) and a certificate for its host name and addresses,
#    in /etc/pendock/tls (`pendock tls init`: keys 0600 root);
# 2. on the dock itself (ROOT /): Debian's nginx (nginx-light) in front of the page:
#    /etc/nginx/conf.d/pendock.conf (`pendock tls nginx --include`: HTTPS on 443, HTTP on
#    80 redirecting except /healthz and /ca), Debian's default site disabled (it takes 80),
#    and a drop-in for pendock-web.service so the page trusts the front's forwarded
#    address and scheme and marks its cookie Secure. The page itself stays on 127.0.0.1.
# Run it again after the dock gets a new name or address (a new certificate; same CA).
set -euo pipefail
ROOT=${1:-/}
at() { if [[ $ROOT == / ]]; then printf '%s' "$1"; else printf '%s%s' "$ROOT" "$1"; fi; }
say() { printf 'tls-setup: %s\n' "$*"; }
readonly TLS_DIR=/etc/pendock/tls
readonly PENDOCK=$(at /opt/pendock/venv)/bin/pendock
readonly DROPIN=/etc/systemd/system/pendock-web.service.d/tls.conf

if [[ ! -x $PENDOCK ]]; then
    say "no $PENDOCK (installed without its venv): the page stays HTTP until hw/tls-setup.sh runs after it."
    exit 0
fi
"$PENDOCK" tls init --dir "$(at "$TLS_DIR")"
if [[ $ROOT != / ]]; then
    say "installed into $ROOT: the HTTPS front is set up on the dock itself (hw/tls-setup.sh /)."
    exit 0
fi
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    say "installing Debian's nginx-light (the HTTPS front)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light
fi
port=$(awk '/^\[web\]/{web=1; next} /^\[/{web=0} web && $1 == "port" {print $3}' /etc/pendock/pendock.toml 2>/dev/null || true)
"$PENDOCK" tls nginx --include --dir "$TLS_DIR" --upstream "${port:-8080}" --out /etc/nginx/conf.d/pendock.conf
rm -f /etc/nginx/sites-enabled/default
mkdir -p "$(dirname "$DROPIN")"
cat >"$DROPIN" <<DROPIN
# Written by hw/tls-setup.sh: the page behind the HTTPS front (appliance/front.py).
[Service]
Environment=PENDOCK_TRUSTED_PROXY=127.0.0.1
Environment=PENDOCK_COOKIE_SECURE=1
Environment=PENDOCK_TLS_DIR=$TLS_DIR
DROPIN
nginx -t -q
if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable --quiet nginx.service
    systemctl reload-or-restart nginx.service
fi
say "the page is https://$(hostname)/ ; enrol each tablet once at http://$(hostname)/ca"
