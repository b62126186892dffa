#!/usr/bin/env bash
# Build the libvirt box `debian/bookworm64` from Debian packages, for machines that cannot
# download it from the public box registry, and add it to Vagrant.
#
#   sudo bash vagrant/build-box.sh            # builds once into /var/cache/opsfix/vagrant
#   vagrant up --provider=libvirt
#
# The box is a qcow2 image of a minimal Debian (mmdebstrap, from the archive apt uses) with
# a kernel booted directly by libvirt (no bootloader): systemd, sshd, nginx and what
# vagrant/provision.sh needs, systemd-networkd on DHCP, and the `vagrant` user with
# Vagrant's insecure key (Vagrant swaps it for a key of its own at the first boot) and
# passwordless sudo. Needs root, mmdebstrap, qemu-utils and e2fsprogs.
set -euo pipefail
{ # read to the end before running: a checkout that changes meanwhile cannot derail it
cache=${OPSFIX_CACHE_DIR:-/var/cache/opsfix}/vagrant
box=$cache/debian-bookworm64-libvirt.box
name=debian/bookworm64
suite=bookworm
key=$(ls /usr/share/rubygems-integration/all/gems/vagrant-2*/keys/vagrant.pub | head -n 1)
# The box is built again when its recipe changes (this script, Vagrant's insecure key): the
# digest goes into the box (opsfix-stamp) and next to the cached file, compared with both.
stamp=$(cat "${BASH_SOURCE[0]}" "$key" | sha256sum | cut -c1-16)
added=${VAGRANT_HOME:-$HOME/.vagrant.d}/boxes/${name//\//-VAGRANTSLASH-}/0/libvirt

if [ "$(id -u)" -ne 0 ]; then echo "build-box.sh: run as root" >&2; exit 1; fi
if [ "$(cat "$added/opsfix-stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$cache/kernel/vmlinuz" ]; then
  echo "build-box.sh: box $name (libvirt) is up to date ($stamp)"; exit 0
fi
if [ "$(cat "$box.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$cache/kernel/vmlinuz" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d /var/tmp/opsfix-box.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  root=$work/root
  packages=systemd,systemd-sysv,dbus,libpam-systemd,libnss-myhostname,openssh-server,sudo
  packages=$packages,iproute2,procps,curl,ca-certificates,rsync,python3,python3-jinja2,nginx
  packages=$packages,logrotate,linux-image-amd64,initramfs-tools,zstd
  mmdebstrap --quiet --variant=minbase --mode=root --include="$packages" "$suite" "$root" \
    "deb http://deb.debian.org/debian $suite main" \
    "deb http://deb.debian.org/debian $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main"
  # Identity is made at first boot: machine-id, hostname (Vagrant sets it), host keys.
  : > "$root/etc/machine-id"; rm -f "$root/etc/hostname" "$root"/etc/ssh/ssh_host_*
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > "$root/etc/systemd/system/ssh.service.d/hostkeys.conf"
  printf 'UseDNS no\n' > "$root/etc/ssh/sshd_config.d/vagrant.conf"
  echo 'LABEL=vmroot / ext4 defaults,errors=remount-ro 0 1' > "$root/etc/fstab"
  # DHCP on any NIC; sorts after Vagrant's 50-vagrant-*.network, which set static addresses.
  mkdir -p "$root/etc/systemd/network"
  printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/99-dhcp.network"
  wants=$root/etc/systemd/system/multi-user.target.wants
  ln -sf /lib/systemd/system/systemd-networkd.service "$wants/systemd-networkd.service"
  ln -sf /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
  chroot "$root" useradd -m -s /bin/bash -p '*' vagrant
  install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  install -m 0600 -o 1000 -g 1000 "$key" "$root/home/vagrant/.ssh/authorized_keys"
  echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$root/etc/sudoers.d/vagrant"
  chmod 0440 "$root/etc/sudoers.d/vagrant"
  install -d "$work/kernel"
  cp "$root"/boot/vmlinuz-* "$work/kernel/vmlinuz"
  cp "$root"/boot/initrd.img-* "$work/kernel/initrd.img"
  mkfs.ext4 -q -F -L vmroot -d "$root" "$work/root.raw" 4G
  qemu-img convert -O qcow2 "$work/root.raw" "$work/box.img"
  printf '{"provider":"libvirt","format":"qcow2","virtual_size":4}\n' > "$work/metadata.json"
  echo "$stamp" > "$work/opsfix-stamp"
  cat > "$work/Vagrantfile" <<EOF
# Box defaults: the image has no bootloader, libvirt boots its kernel directly.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = "$cache/kernel/vmlinuz"
    lv.initrd = "$cache/kernel/initrd.img"
    lv.cmd_line = "root=LABEL=vmroot rw console=ttyS0 quiet"
  end
end
EOF
  tar -C "$work" -czf "$box.tmp" metadata.json Vagrantfile box.img opsfix-stamp
  # libvirt's qemu runs as libvirt-qemu: the kernel must be where it may read, not in the
  # box folder under root's private ~/.vagrant.d. Kernel, box and stamp change together.
  install -d -m 0755 "$cache/kernel"
  install -m 0644 "$work/kernel/vmlinuz" "$cache/kernel/vmlinuz.tmp"
  install -m 0644 "$work/kernel/initrd.img" "$cache/kernel/initrd.img.tmp"
  mv "$cache/kernel/vmlinuz.tmp" "$cache/kernel/vmlinuz"
  mv "$cache/kernel/initrd.img.tmp" "$cache/kernel/initrd.img"
  mv "$box.tmp" "$box"
  echo "$stamp" > "$box.stamp"
fi
vagrant box add --force --name "$name" "$box"
exit
}
