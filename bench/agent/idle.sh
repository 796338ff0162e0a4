#!/bin/sh
# idle.sh WORK: idle memory of a real, enrolled koshin-agent polling a real
# koshin server with nothing to install. Prints Markdown table rows; run.sh
# calls it after building $WORK/koshin-agent (stripped) and $WORK/koshin.
#
# The server installation comes from `koshin sim lab` (SQLite, loopback
# ports, an API token); the agent enrolls with a one-time token, then runs
# with a simulated bootloader and two 64 KiB slot files. Memory is read from
# /proc/PID/status once the agent has checked in and polled for a while.
set -eu
WORK=$1
K=$WORK/koshin
A=$WORK/koshin-agent
D=$WORK/idle
SETTLE=${SETTLE:-60}
rm -rf "$D"
mkdir -p "$D/dev/health.d"

"$K" sim lab --dir "$D/lab" --devices 1 --poll-interval 10s >"$D/lab.out" 2>&1
dev_addr=$(sed -n 's/^device_listen: "\(.*\)"/\1/p' "$D/lab/server.yaml")
mgmt=https://$(sed -n 's/^management_listen: "\(.*\)"/\1/p' "$D/lab/server.yaml")
ca=$D/lab/data/pki/server-ca.crt
KOSHIN_PASSPHRASE=$(cat "$D/lab/director-passphrase") "$K" server --config "$D/lab/server.yaml" >"$D/server.log" 2>&1 &
SERVER=$!
AGENT=
stop() {
	[ -n "$AGENT" ] && kill -TERM "$AGENT" 2>/dev/null
	kill -TERM "$SERVER" 2>/dev/null
	wait 2>/dev/null || true
}
trap stop EXIT
mgmtcmd() { "$K" "$@" --server "$mgmt" --ca "$ca" --token-file "$D/lab/api-token"; }
until mgmtcmd device list >/dev/null 2>&1; do
	kill -0 "$SERVER" 2>/dev/null || { cat "$D/server.log" >&2; exit 1; }
	sleep 0.2
done
token=$(mgmtcmd device token create --description bench | tail -1)

cd "$D/dev"
truncate -s 64K slot-a.img slot-b.img
cat >agent.json <<EOF
{
  "server": "https://$dev_addr",
  "state_dir": "$D/dev/state",
  "hardware_id": "demo-board",
  "serial": "BENCH-0001",
  "slots": {"a": "$D/dev/slot-a.img", "b": "$D/dev/slot-b.img"},
  "bootloader": {"type": "sim", "env": "$D/dev/bootenv.json"},
  "health": {"dir": "$D/dev/health.d"},
  "installers": {"rootfs": {"type": "raw"}},
  "control": {"socket": "$D/dev/agent.sock"},
  "counter_key": "$D/dev/counter.key"
}
EOF
"$A" enroll -config agent.json -token "$token" -server-ca "$ca" \
	-image-root "$D/lab/published/1.root.json" -director-root "$D/lab/data/director/1.root.json" >enroll.log 2>&1
"$A" run -config agent.json >run.log 2>&1 &
AGENT=$!
# First check-in: the server has seen the device.
until mgmtcmd device list 2>/dev/null | grep BENCH-0001 | grep -qv never; do
	kill -0 "$AGENT" 2>/dev/null || { cat run.log >&2; exit 1; }
	sleep 0.5
done
sleep "$SETTLE"
max=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	rss=$(awk '/^VmRSS/{print $2}' "/proc/$AGENT/status")
	[ "$rss" -gt "$max" ] && max=$rss
	sleep 2
done
hwm=$(awk '/^VmHWM/{print $2}' "/proc/$AGENT/status")
threads=$(awk '/^Threads/{print $2}' "/proc/$AGENT/status")
seen=$(mgmtcmd device list 2>/dev/null | awk '/BENCH-0001/{print $NF}')
echo "| \`koshin-agent run\` idle RSS (VmRSS, highest of 10 samples over 20 s, after the first check-in + ${SETTLE} s; server poll interval 10 s) | $max KiB ($(awk "BEGIN{printf \"%.1f\", $max/1024}") MiB) |"
echo "| same, peak RSS since start (VmHWM: start-up, TLS handshakes, polls) | $hwm KiB ($(awk "BEGIN{printf \"%.1f\", $hwm/1024}") MiB), $threads threads; last check-in $seen |"
