"""The booted image: Debian 12 with systemd as PID 1 under qemu, the dock installed by
hw/install.sh as a technician would (`make test-system`, README "The system test")."""
