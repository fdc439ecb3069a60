#!/bin/sh
# Inside the guest, in the host's root (read-only over 9p): run the guest tests with the
# repository's own Python environment. Writable: /run and /dev/shm (tmpfs); TMPDIR is /run/hil.
cd "$pendock_repo" || exit 3
export TMPDIR=/run/hil HOME=/run/hil PYTHONDONTWRITEBYTECODE=1 PENDOCK_HIL_GUEST=1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# lgpio makes its notification FIFOs in its working folder: it must be writable.
export LG_WD=/run/hil/lgpio
mkdir -p "$TMPDIR" "$LG_WD"
exec "$pendock_python" -m pytest -p no:cacheprovider --color=no -rfEs --durations=5 tests/hil/guest ${pendock_k:+-k "$pendock_k"}
