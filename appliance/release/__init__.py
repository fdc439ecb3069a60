"""Signed release bundles and the release slots beside the running one (README, Updates).

bundle.py reads and checks a bundle, build.py makes one (`make bundle`), slots.py is the
/opt/pendock/releases + `current` layout, upgrade.py the switch with its health check and
automatic rollback. The filesystem root, systemctl and the health probe are passed in, so
tests drive all of it in a scratch root.
"""
