#!/usr/bin/env bash
# The fleet test's network: one namespace per site, joined by a "backbone" router
# namespace. Nothing here touches the caller's namespace: every veth is created directly
# inside the namespaces it joins, and every address (10.200.0.0/16) exists only there.
#
#   ID-o   origin     10.200.0.2      nginx (publisher's directory; bad mirror on :81)
#   ID-a   region A   10.200.1.2      delay proxy to the origin
#                     10.200.1.10     hub A      .11 edge A1   .12 edge A2   .13 mirror edge
#   ID-b   region B   10.200.2.2      delay proxy to the origin
#                     10.200.2.10     hub B      .11 edge B1   .12 edge B2
#   ID-c   clients    10.200.9.2      HAProxy and the load client
#   ID-bb  backbone   10.200.{0,1,2,9}.1, forwards between the four
#
# usage: netns.sh up ID | down ID | cut ID SITE | heal ID SITE | sweep
#   up     creates everything (and removes it again if any step fails)
#   down   stops what still runs inside ID-* (by PID, from `ip netns pids`), deletes them
#   cut    takes SITE's link down on the backbone side (SITE = o, a, b or c); heal: up
#   sweep  runs `down` for namespaces left by fleet runs whose process is gone
set -euo pipefail

sites=(o a b c)
declare -A subnet=([o]=0 [a]=1 [b]=2 [c]=9)
declare -A hosts=([o]="2" [a]="2 10 11 12 13" [b]="2 10 11 12" [c]="2")

down() {
  local id=$1 ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${id}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${id}-" || true); do
    # A namespace is freed once no process is left in it; give killed ones a moment.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] && break
      sleep 0.1
    done
    ip netns delete "$ns" 2>/dev/null || true
  done
}

up() {
  local id=$1 site n host
  trap 'echo "netns.sh: setup failed at line $LINENO; removing what was created" >&2; down "$id"' ERR
  ip netns add "$id-bb"
  ip -n "$id-bb" link set lo up
  ip netns exec "$id-bb" sysctl -qw net.ipv4.ip_forward=1
  for site in "${sites[@]}"; do
    n=${subnet[$site]}
    ip netns add "$id-$site"
    ip -n "$id-$site" link set lo up
    ip link add name "${id}${site}0" netns "$id-bb" type veth peer name "${id}${site}1" netns "$id-$site"
    ip -n "$id-bb" addr add "10.200.$n.1/24" dev "${id}${site}0"
    ip -n "$id-bb" link set "${id}${site}0" up
    for host in ${hosts[$site]}; do
      ip -n "$id-$site" addr add "10.200.$n.$host/24" dev "${id}${site}1"
    done
    ip -n "$id-$site" link set "${id}${site}1" up
    ip -n "$id-$site" route add default via "10.200.$n.1"
  done
  trap - ERR
}

case ${1:-} in
  up) up "$2" ;;
  down) down "$2" ;;
  cut) ip -n "$2-bb" link set "${2}${3}0" down ;;
  heal) ip -n "$2-bb" link set "${2}${3}0" up ;;
  sweep)
    for id in $(ip netns list | awk '{print $1}' | sed -nE 's/^(of[0-9]+)-bb$/\1/p' | sort -u); do
      pid=${id#of}
      if [[ ! -d /proc/$pid ]]; then
        echo "netns.sh: removing namespaces left by fleet run $id" >&2
        down "$id"
      fi
    done
    ;;
  *) echo "usage: $0 up ID | down ID | cut ID SITE | heal ID SITE | sweep" >&2; exit 64 ;;
esac
