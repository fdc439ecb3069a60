#!/bin/sh
# PID 1 of the hardware-in-the-loop guest (packed into the initramfs by tests/hil/build.py).
# Loads virtio/9p/configfs/gpio-sim, mounts the host's root read-only over 9p with fresh
# proc, sys, configfs, dev and a tmpfs on /run on top (not on /tmp: the checkout may live
# there), runs tests/hil/guest/run.sh of the repository
# named on the kernel command line (pendock_repo=...) inside it, and powers off. Every
# failure is printed with the HIL: prefix the host side looks for.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /lib/modules/order); do
  insmod "/lib/modules/$module.ko" || echo "HIL: insmod $module failed"
done
R=/mnt/root
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot $R; then
  echo "HIL: cannot mount the host's root over 9p"
  echo "HIL-EXIT 3"; poweroff -f
fi
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t configfs configfs $R/sys/kernel/config
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/shm && mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
if [ -z "${pendock_repo:-}" ] || [ ! -f "$R$pendock_repo/tests/hil/guest/run.sh" ]; then
  echo "HIL: no tests/hil/guest/run.sh under pendock_repo=${pendock_repo:-} (kernel command line)"
  echo "HIL-EXIT 3"; poweroff -f
fi
chroot $R /bin/sh "$pendock_repo/tests/hil/guest/run.sh"
echo "HIL-EXIT $?"
poweroff -f
