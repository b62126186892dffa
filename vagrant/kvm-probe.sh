#!/bin/sh
# Print the libvirt driver the practice VMs can use: `kvm` when a Linux kernel boots under
# KVM here (it reaches its "no root filesystem" panic within seconds), else `qemu`
# (software emulation). /dev/kvm alone proves nothing: on some hosts it opens and creates
# VMs whose kernels then hang early in boot. The answer is kept in .vagrant/kvm-driver.
cache=.vagrant/kvm-driver
if [ -s "$cache" ]; then cat "$cache"; exit 0; fi
driver=qemu
# Any Linux kernel will do: the one vagrant/build-box.sh keeps for the box, else the host's.
kernel=$(ls "${OPSFIX_CACHE_DIR:-/var/cache/opsfix}/vagrant/kernel/vmlinuz" /boot/vmlinuz-* 2>/dev/null | head -n 1)
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -n "$kernel" ] && command -v qemu-system-x86_64 >/dev/null; then
  out=$(timeout 20 qemu-system-x86_64 -accel kvm -m 256 -display none -serial stdio -no-reboot \
    -kernel "$kernel" -append "console=ttyS0 panic=-1 root=/dev/opsfix-none" 2>&1 </dev/null)
  case $out in *"Kernel panic"*|*"VFS: "*) driver=kvm ;; esac
fi
mkdir -p .vagrant && echo "$driver" > "$cache"
echo "$driver"
