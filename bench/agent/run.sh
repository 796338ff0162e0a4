#!/bin/sh
# Agent benchmarks (see README.md in this directory): idle RSS and stripped
# linux/arm64 size of koshin-agent; install throughput and peak RSS of a
# 64 MiB and a 512 MiB ext4 image into a slot file, for koshin's Raw
# installer, dd conv=fsync, RAUC 1.8, SWUpdate 2022.12 and (opt-in) Mender 3.4.
#
#   bench/agent/run.sh                      # everything, sizes 64 and 512 MiB
#   SIZES=64 bench/agent/run.sh             # one size
#   KOSHIN_BENCH_MENDER=1 bench/agent/run.sh  # also Mender (read README first)
#
# Needs root (dropping the page cache, RAUC's loop mount), Go, and the Debian
# packages: rauc swupdate squashfs-tools dbus e2fsprogs time openssl cpio
# libubootenv-tool u-boot-tools (mender-client mender-artifact for Mender).
# WORK (default /var/tmp/koshin-bench-agent) must be on a real disk, not
# tmpfs: fsync is part of what is measured. Results: $WORK/results.md.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/var/tmp/koshin-bench-agent}
SIZES=${SIZES:-64 512}
REPS=${REPS:-3}
MENDER=${KOSHIN_BENCH_MENDER:-0}

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (drop caches, loop mounts)"
for t in go rauc swupdate mksquashfs dbus-daemon mkfs.ext4 openssl cpio fw_printenv mkenvimage; do
	command -v "$t" >/dev/null || die "$t missing: apt-get install rauc swupdate squashfs-tools dbus e2fsprogs time openssl cpio libubootenv-tool u-boot-tools"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"
if [ "$MENDER" = 1 ]; then
	command -v mender >/dev/null && command -v mender-artifact >/dev/null || die "apt-get install mender-client mender-artifact"
fi

mkdir -p "$WORK"
cd "$WORK"
RESULTS=$WORK/results.md
LOG=$WORK/log.txt
: >"$LOG"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---------------------------------------------------------------- machine
{
	echo "# koshin agent benchmarks"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- command: bench/agent/run.sh (SIZES='$SIZES' REPS=$REPS KOSHIN_BENCH_MENDER=$MENDER)"
	echo "- machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
	echo "- work dir: $WORK on $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' ')"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $(go version | cut -d' ' -f3-4); rauc $(rauc --version | cut -d' ' -f2); swupdate $(dpkg-query -W -f '${Version}' swupdate)$( [ "$MENDER" = 1 ] && echo "; mender-client $(dpkg-query -W -f '${Version}' mender-client)")"
	echo
} >"$RESULTS"

# ---------------------------------------------------------------- build
echo "building" >&2
(cd "$ROOT" && go build -o "$WORK/rawinstall" ./bench/agent/rawinstall)
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$WORK/koshin-agent" ./cmd/koshin-agent)
(cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags='-s -w' -o "$WORK/koshin-agent-arm64" ./cmd/koshin-agent)
(cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags='-s -w' -o "$WORK/koshin-agent-armv7" ./cmd/koshin-agent)
(cd "$ROOT" && go build -o "$WORK/koshin" ./cmd/koshin)

# ---------------------------------------------------------------- (a) size and idle RSS
size_of() { stat -c %s "$1"; }
{
	echo "## Agent binary and idle memory"
	echo
	echo "| | value |"
	echo "|---|---|"
	echo "| \`koshin-agent\` linux/arm64, \`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'\` | $(size_of koshin-agent-arm64) bytes ($(awk "BEGIN{printf \"%.1f\", $(size_of koshin-agent-arm64)/1048576}") MiB) |"
	echo "| same, linux/arm GOARM=7 | $(size_of koshin-agent-armv7) bytes ($(awk "BEGIN{printf \"%.1f\", $(size_of koshin-agent-armv7)/1048576}") MiB) |"
	echo "| same, linux/amd64 (the binary measured below) | $(size_of koshin-agent) bytes ($(awk "BEGIN{printf \"%.1f\", $(size_of koshin-agent)/1048576}") MiB) |"
} >>"$RESULTS"
[ "${SKIP_IDLE:-0}" = 1 ] || sh "$ROOT/bench/agent/idle.sh" "$WORK" >>"$RESULTS" 2>>"$LOG" || echo "| idle RSS | failed: see $LOG |" >>"$RESULTS"
echo >>"$RESULTS"

# ---------------------------------------------------------------- payloads and peers' packages
# The payload is an ext4 image (what an A/B root file system update is)
# whose files are random bytes, so no tool gains from compression.
payload() { # SIZE_MIB
	pimg=payload-$1.img
	[ -s "$pimg" ] && return
	rm -rf tree && mkdir -p tree/usr/lib
	n=$(( $1 * 3 / 4 / 8 )) # 8 MiB files filling 3/4 of the image
	i=0
	while [ $i -lt $n ]; do head -c 8M /dev/urandom >tree/usr/lib/blob$i.bin; i=$((i + 1)); done
	echo "VERSION=2.0" >tree/koshin-release
	truncate -s "$1"M "$pimg.tmp"
	mkfs.ext4 -q -F -L root-2 -d tree "$pimg.tmp"
	mv "$pimg.tmp" "$pimg"
	rm -rf tree
}

# One certificate for RAUC and SWUpdate (CMS signatures), one key for Mender.
if [ ! -s pki/cert.pem ]; then
	mkdir -p pki
	openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/key.pem -out pki/cert.pem -days 3650 -subj /CN=koshin-bench \
		-addext keyUsage=digitalSignature -addext extendedKeyUsage=codeSigning,emailProtection 2>>"$LOG"
	openssl ecparam -genkey -name prime256v1 -noout -out pki/mender-key.pem 2>>"$LOG"
	openssl ec -in pki/mender-key.pem -pubout -out pki/mender-pub.pem 2>>"$LOG"
fi

rauc_bundle() { # SIZE
	rb=rauc-$1.raucb
	[ -s "$rb" ] && return
	rm -rf rauc-content && mkdir rauc-content
	cp "payload-$1.img" rauc-content/rootfs.img
	cat >rauc-content/manifest.raucm <<-EOF
	[update]
	compatible=koshin-bench
	version=2.0

	[bundle]
	format=plain

	[image.rootfs]
	filename=rootfs.img
	EOF
	rauc bundle --cert=pki/cert.pem --key=pki/key.pem rauc-content "$rb" >>"$LOG" 2>&1
	rm -rf rauc-content
}

swu_bundle() { # SIZE MODE(direct|tmp)
	sb=swu-$1-$2.swu
	[ -s "$sb" ] && return
	rm -rf swu-content && mkdir swu-content
	cp "payload-$1.img" swu-content/rootfs.img
	direct=""
	[ "$2" = direct ] && direct="installed-directly = true;"
	cat >swu-content/sw-description <<-EOF
	software =
	{
		version = "2.0";
		hardware-compatibility = [ "1.0" ];
		images: (
			{
				filename = "rootfs.img";
				device = "$WORK/slot.img";
				type = "raw";
				sha256 = "$(cat "payload-$1.img.sha256")";
				$direct
			}
		);
	}
	EOF
	(cd swu-content &&
		openssl cms -sign -in sw-description -out sw-description.sig -signer ../pki/cert.pem -inkey ../pki/key.pem \
			-outform DER -nosmimecap -binary &&
		printf 'sw-description\nsw-description.sig\nrootfs.img\n' | cpio -o -H crc --quiet >"../$sb")
	rm -rf swu-content
}

mender_artifact() { # SIZE
	ma=mender-$1.mender
	[ -s "$ma" ] && return
	mender-artifact write rootfs-image -t koshin-bench -n release-2 -f "payload-$1.img" -o "$ma" \
		--compression none -k pki/mender-key.pem >>"$LOG" 2>&1
}

for sz in $SIZES; do
	echo "preparing $sz MiB payload and bundles" >&2
	payload "$sz"
	[ -s "payload-$sz.img.sha256" ] || sha256sum "payload-$sz.img" | cut -c1-64 >"payload-$sz.img.sha256"
	rauc_bundle "$sz"
	swu_bundle "$sz" direct
	swu_bundle "$sz" tmp
	if [ "$MENDER" = 1 ]; then mender_artifact "$sz"; fi
done

# ---------------------------------------------------------------- RAUC service on a private bus
cat >rauc-bootloader.sh <<'EOF'
#!/bin/sh
# RAUC custom bootloader backend on a state file (the benchmark's stand-in
# for a bootloader environment).
STATE=$(dirname "$0")/rauc-boot.state
[ -f "$STATE" ] || echo A >"$STATE"
case "$1" in
get-primary) cat "$STATE" ;;
set-primary) echo "$2" >"$STATE"; sync "$STATE" ;;
get-state) echo good ;;
set-state) ;;
get-current) echo A ;;
esac
EOF
chmod +x rauc-bootloader.sh
truncate -s 1M slot-a.img
cat >rauc-system.conf <<EOF
[system]
compatible=koshin-bench
bootloader=custom

[handlers]
bootloader-custom-backend=$WORK/rauc-bootloader.sh

[keyring]
path=$WORK/pki/cert.pem

[slot.rootfs.0]
device=$WORK/slot-a.img
type=raw
bootname=A

[slot.rootfs.1]
device=$WORK/slot.img
type=raw
bootname=B
EOF
cat >bus.conf <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$WORK/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
rm -f bus.sock
dbus-daemon --config-file=bus.conf --nofork >>"$LOG" 2>&1 &
DBUS_PID=$!
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$WORK/bus.sock
MENDER_INFO_CREATED=0
cleanup() {
	kill "$DBUS_PID" 2>/dev/null || true
	if [ "$MENDER_INFO_CREATED" = 1 ]; then rm -f /etc/mender/artifact_info; fi
}
trap cleanup EXIT
while [ ! -S bus.sock ]; do sleep 0.1; done

# ---------------------------------------------------------------- Mender (opt-in)
# Mender's dual-rootfs installer picks the partition to write by comparing
# the device "/" is mounted from with RootfsPartA and RootfsPartB, by name;
# so RootfsPartA must name this machine's root device, and RootfsPartB is the
# slot. Mender then writes only RootfsPartB. Mender 3.4 refuses a regular file
# ("not a block device"), so the slot file is attached as a loop device for
# it. fw_printenv/fw_setenv are wrapped to use a private U-Boot environment.
if [ "$MENDER" = 1 ]; then
	rootdev=$(findmnt -n -o SOURCE /)
	[ -b "$rootdev" ] || die "Mender: / is not mounted from a block device ($rootdev)"
	mkdir -p mender-data mender-bin
	echo "device_type=koshin-bench" >mender-data/device_type
	printf 'mender_boot_part=2\nmender_boot_part_hex=2\nupgrade_available=0\nbootcount=0\n' >mender-env.txt
	mkenvimage -r -s 0x4000 -o mender-env.bin mender-env.txt
	cp mender-env.bin mender-env2.bin
	printf '%s 0x0 0x4000\n%s 0x0 0x4000\n' "$WORK/mender-env.bin" "$WORK/mender-env2.bin" >mender-fw_env.config
	for t in fw_printenv fw_setenv; do
		printf '#!/bin/sh\nexec /usr/bin/%s -c %s "$@"\n' "$t" "$WORK/mender-fw_env.config" >"mender-bin/$t"
		chmod +x "mender-bin/$t"
	done
	# Mender reads the running artifact's name from this fixed path until its
	# database knows one; created here only if absent, removed at exit.
	if [ ! -e /etc/mender/artifact_info ]; then
		mkdir -p /etc/mender
		echo "artifact_name=release-1" >/etc/mender/artifact_info
		MENDER_INFO_CREATED=1
	fi
	echo "{}" >mender-fallback.conf
fi

# ---------------------------------------------------------------- (b, c) installs
# fresh_slot SIZE: a pre-allocated slot file of the image's size, cold cache.
fresh_slot() {
	rm -f slot.img
	fallocate -l "$1"M slot.img
	drop_caches
}

# timed NAME SIZE CMD...: run CMD under /usr/bin/time; append "NAME SIZE seconds maxrss_kb".
timed() {
	tname=$1 tsize=$2
	shift 2
	fresh_slot "$tsize"
	/usr/bin/time -o time.out -f '%e %M' "$@" >>"$LOG" 2>&1 || die "$tname $tsize MiB failed, see $LOG"
	check "$tname" "$tsize" slot.img
	echo "$tname $tsize $(cat time.out)" >>raw-results.txt
}

check() { # NAME SIZE FILE: the slot holds the image
	cmp -n "$(stat -c %s "payload-$2.img")" "payload-$2.img" "$3" || die "$1: slot does not hold the image"
}

rauc_install() { # SIZE
	fresh_slot "$1"
	echo A >rauc-boot.state
	# The installation runs in the service; its peak RSS (VmHWM) is read
	# before it is stopped. The client only waits for the result.
	rauc --conf=rauc-system.conf --override-boot-slot=A service >>"$LOG" 2>&1 &
	pid=$!
	until rauc status >/dev/null 2>&1; do sleep 0.1; done
	drop_caches
	start=$(date +%s.%N)
	rauc install "rauc-$1.raucb" >>"$LOG" 2>&1 || die "rauc install failed, see $LOG"
	end=$(date +%s.%N)
	hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
	kill -TERM "$pid"
	wait "$pid" || true
	check rauc "$1" slot.img
	[ "$(cat rauc-boot.state)" = B ] || die "rauc did not switch to B"
	echo "rauc $1 $(awk "BEGIN{print $end - $start}") $hwm" >>raw-results.txt
}

mender_install() { # SIZE
	rm -f slot.img
	fallocate -l "$1"M slot.img
	loop=$(losetup --find --show slot.img)
	cat >mender.conf <<-EOF
	{
	  "RootfsPartA": "$(findmnt -n -o SOURCE /)",
	  "RootfsPartB": "$loop",
	  "ArtifactVerifyKey": "$WORK/pki/mender-pub.pem",
	  "ServerURL": "https://127.0.0.1:1"
	}
	EOF
	rm -rf mender-data/mender-store*
	cp mender-env.bin mender-env2.bin
	drop_caches
	rc=0
	PATH=$WORK/mender-bin:$PATH /usr/bin/time -o time.out -f '%e %M' \
		mender --config mender.conf --fallback-config mender-fallback.conf --data "$WORK/mender-data" --no-syslog \
		install "mender-$1.mender" >>"$LOG" 2>&1 || rc=$?
	losetup -d "$loop"
	[ "$rc" = 0 ] || die "mender install failed, see $LOG"
	check mender "$1" slot.img
	echo "mender $1 $(cat time.out)" >>raw-results.txt
}

: >raw-results.txt
for rep in $(seq "$REPS"); do
	for sz in $SIZES; do
		echo "run $rep, $sz MiB" >&2
		sum=$(cat "payload-$sz.img.sha256")
		timed dd "$sz" dd if="payload-$sz.img" of=slot.img bs=4M conv=fsync,notrunc
		timed koshin "$sz" ./rawinstall -image "payload-$sz.img" -sha256 "$sum" -slot slot.img -state koshin-state
		timed koshin-every4M "$sz" ./rawinstall -image "payload-$sz.img" -sha256 "$sum" -slot slot.img -state koshin-state -checkpoint-interval 0
		rauc_install "$sz"
		TMPDIR=$WORK timed swupdate-direct "$sz" swupdate -k pki/cert.pem -H koshin-bench:1.0 -i "swu-$sz-direct.swu"
		TMPDIR=$WORK timed swupdate-tmp "$sz" swupdate -k pki/cert.pem -H koshin-bench:1.0 -i "swu-$sz-tmp.swu"
		if [ "$MENDER" = 1 ]; then mender_install "$sz"; fi
	done
done
rm -f slot.img

# ---------------------------------------------------------------- table
awk -v reps="$REPS" '
function median(list, n,   a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 " " $2; secs[k] = secs[k] " " $3; rss[k] = (rss[k] > $4 ? rss[k] : $4); if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
END {
	print "## Install into a slot file (median of " reps " runs; peak RSS is the largest of the runs)"
	print ""
	print "| tool | image | wall time | throughput | throughput vs dd | peak RSS |"
	print "|---|---|---|---|---|---|"
	for (i = 1; i <= n; i++) {
		split(order[i], p, " ")
		t = median(secs[order[i]])
		d = median(secs["dd " p[2]])
		printf "| %s | %d MiB | %.2f s | %.0f MiB/s | %.2f | %.1f MiB |\n", p[1], p[2], t, p[2] / t, d / t, rss[order[i]] / 1024
	}
}' raw-results.txt >>"$RESULTS"
{
	echo
	echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- raw runs (tool, MiB, seconds, max RSS KiB): $WORK/raw-results.txt"
} >>"$RESULTS"
cat "$RESULTS"
