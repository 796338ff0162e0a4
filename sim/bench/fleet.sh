#!/bin/sh
# fleet.sh OUT DEVICES [koshin sim flags...]
#
# Runs a koshin server and a simulated fleet as two processes on this
# machine, to measure the server (CPU time, peak memory) apart from the
# simulator: prepares a lab in OUT/lab (koshin sim lab), starts the
# server, runs koshin sim with --server-pid and the given flags, and
# writes OUT/summary.json, OUT/sim.log, OUT/server.log and OUT/machine.txt.
#
# Environment: KOSHIN (binary, default koshin), IMAGE_SIZE (demo image
# bytes, default 4096), ROLLOUT (phases of the rollout started once the
# fleet is up, default 1%,10%,50%,100%; "none" for no rollout),
# MAX_FAILURE_PERCENT (default 5), LAB_FLAGS (extra koshin sim lab flags).
set -eu
out=$1
n=$2
shift 2
bin=${KOSHIN:-koshin}
lab=$out/lab
mkdir -p "$out"
{ date -u +%Y-%m-%dT%H:%M:%SZ; uname -srm; nproc; free -m | sed -n 2p; uptime; "$bin" --help >/dev/null && go version; } >"$out/machine.txt" 2>&1
# shellcheck disable=SC2086
"$bin" sim lab --dir "$lab" --devices "$n" --image-size "${IMAGE_SIZE:-4096}" ${LAB_FLAGS:-} >"$out/lab.txt"
KOSHIN_PASSPHRASE=$(cat "$lab/director-passphrase") "$bin" server --config "$lab/server.yaml" >"$out/server.log" 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null || true' EXIT INT TERM
dev=$(sed -n 's/^device_listen: "\(.*\)"/\1/p' "$lab/server.yaml")
mgmt=$(sed -n 's/^management_listen: "\(.*\)"/\1/p' "$lab/server.yaml")
ca=$lab/data/pki/server-ca.crt
tries=0
until grep -q '^management API' "$out/server.log"; do
	tries=$((tries + 1))
	[ $tries -lt 100 ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
	sleep 0.1
done
api="--server https://$mgmt --ca $ca --token-file $lab/api-token"
phases=${ROLLOUT:-1%,10%,50%,100%}
set -- --server "https://$dev" --ca "$ca" --image-root "$lab/published/1.root.json" --factory demo-os-1.0 \
	--devices "$n" --seed "$(cat "$lab/seed")" --serial-prefix LAB --server-pid "$spid" --json "$out/summary.json" "$@"
if [ "$phases" != none ]; then
	set -- "$@" --until-done --on-ready "$bin rollout create $api --release demo-os-1.1 --all --phases $phases \
--max-failure-percent ${MAX_FAILURE_PERCENT:-5} --silence-timeout 1h && $bin rollout start 1 $api"
fi
echo "$bin sim $*" >"$out/command.txt"
"$bin" sim "$@" 2>"$out/sim.log"
status=$?
uptime >>"$out/machine.txt"
exit $status
