# Boot one practice host: sh boot.sh NAME ADDRESS PREFIXLEN HOSTDIR STATEDIR
#
# The controller starts this as PID 1 of fresh pid, mount and uts namespaces inside the
# host's netns. It gives the host a private filesystem (overlays on /etc and /var, tmpfs
# on /run, /tmp, /root, /dev/shm and a small /var/log, its own /etc/nginx and web root),
# starts nginx, and then becomes sshd, which as PID 1 reaps every orphan of the host.
set -eu
name=$1 address=$2 prefixlen=$3 hostdir=$4 statedir=$5

# A handle on the host's folder that keeps working once the mounts below hide its path
# (the state dir usually lives under /var or /tmp). `mount -c` keeps mount(8) from
# resolving the /proc link to a path that no longer leads there.
exec 3<"$hostdir"
own=/proc/self/fd/3

# Drop this mount namespace's references to other network namespaces: a copy of another
# lab's /run/netns entry would keep that lab's namespace and cables alive after its `down`.
# Detaching /run/netns detaches every entry under it in one go.
if mountpoint -q /run/netns; then umount -l /run/netns; fi
findmnt -rn -t nsfs -o TARGET | xargs -r umount -l

mount -t overlay lab-etc -o "lowerdir=/etc,upperdir=$hostdir/etc-upper,workdir=$hostdir/etc-work" /etc
mount -t overlay lab-var -o "lowerdir=/var,upperdir=$hostdir/var-upper,workdir=$hostdir/var-work" /var
mount -c --bind "$own/nginx" /etc/nginx
mkdir -p /var/www/html
mount -c --bind "$own/www" /var/www/html
mount -t tmpfs -o size=16m,mode=0755 lab-log /var/log
install -d -m 0755 -o root -g adm /var/log/nginx

mount -t tmpfs -o size=64m,mode=0755 lab-run /run
install -d -m 0755 /run/sshd
install -d -m 1777 /run/lock
install -d -m 0700 /run/opsfix-lab
cp "$own/sshd/sshd_config" "$own/sshd/ssh_host_ed25519_key" "$own/sshd/ssh_host_ed25519_key.pub" \
    "$own/sshd/authorized_keys" /run/opsfix-lab/

mount -t tmpfs -o size=256m,mode=1777 lab-tmp /tmp
mount -t tmpfs -o size=256m,mode=1777 lab-shm /dev/shm
mount -t tmpfs -o size=32m,mode=0700 lab-root /root
cp -a /etc/skel/. /root/
install -d -m 0700 /root/.ssh
install -m 0600 "$own/sshd/authorized_keys" /root/.ssh/authorized_keys
mount -t sysfs lab-sys /sys

# Keep the lab's keys and the other hosts' files out of sight.
if [ -d "$statedir" ]; then mount -t tmpfs -o size=16k,mode=0700 lab-hidden "$statedir"; fi
exec 3<&-

echo "$name" > /proc/sys/kernel/hostname
echo "$name" > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n%s\t%s\n' "$name" "$address" "$name" > /etc/hosts
# sshd without PAM refuses key logins to an account whose password is locked ('!').
case $(getent shadow root | cut -d: -f2) in '!'*) usermod -p '*' root ;; esac

ip link set lo up
ip addr add "$address/$prefixlen" dev eth0
ip link set eth0 up

nginx
exec /usr/sbin/sshd -D -e -f /run/opsfix-lab/sshd_config
