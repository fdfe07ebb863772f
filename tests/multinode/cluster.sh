#!/usr/bin/env bash
# Two test hosts on this machine: network namespaces vtb-node1 and vtb-node2 joined by one veth pair,
# 192.0.2.1/24 and 192.0.2.2/24 (RFC 5737's documentation range, no route off the link), each with its
# own /etc/hosts (/etc/netns/NS/hosts, bind-mounted by `on`) naming node1 and node2.
#   cluster.sh up              make them (a leftover pair from an earlier run is removed first)
#   cluster.sh down            end every process inside them, remove them, check that nothing is left
#   cluster.sh on NODE CMD...  run CMD on node1 or node2: its network namespace and a UTS namespace whose
#                              hostname is NODE, so Open MPI and Slurm see two hosts
#   cluster.sh agent NODE CMD  Open MPI's rsh agent (plm_rsh_agent): like `on`, the command as one string
# Needs root and iproute2.
set -euo pipefail
nodes=(node1 node2)
ns() { echo "vtb-$1"; }

on() {  # NODE CMD...
  local node=$1; shift
  [[ $node == node1 || $node == node2 ]] || { echo "cluster.sh: no test host '$node' (node1, node2)" >&2; exit 2; }
  # Not `ip netns exec`: it mounts a fresh /sys, without the cgroup file systems slurmd needs. The node's
  # network, a mount namespace for its own /etc/hosts, a UTS namespace for its own hostname.
  exec nsenter --net="/run/netns/$(ns "$node")" unshare --mount --uts -- sh -c \
    'mount --bind "/etc/netns/vtb-$0/hosts" /etc/hosts && hostname "$0" && exec "$@"' "$node" "$@"
}

down() {
  local left=0
  for node in "${nodes[@]}"; do
    local n; n=$(ns "$node")
    [[ -e /run/netns/$n ]] || continue
    # Everything still running inside (ranks, orted, slurmd): TERM, then KILL.
    local pids; pids=$(ip netns pids "$n" 2>/dev/null || true)
    [[ -n $pids ]] && kill $pids 2>/dev/null || true
    for ((i = 0; i < 50; ++i)); do [[ -z $(ip netns pids "$n" 2>/dev/null) ]] && break; sleep 0.1; done
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
    # "Device or resource busy" for a moment after its last process ends: retry.
    for ((i = 0; i < 50; ++i)); do ip netns del "$n" 2>/dev/null && break; sleep 0.1; done
  done
  rm -rf /etc/netns/vtb-node1 /etc/netns/vtb-node2
  rmdir /etc/netns 2>/dev/null || true
  for node in "${nodes[@]}"; do
    if [[ -e /run/netns/$(ns "$node") ]]; then echo "cluster.sh: namespace $(ns "$node") is still there" >&2; left=1; fi
  done
  if ip link show vtb-veth1 >/dev/null 2>&1; then echo "cluster.sh: link vtb-veth1 is still there" >&2; left=1; fi
  return $left
}

up() {
  down 2>/dev/null || true
  local i=1
  for node in "${nodes[@]}"; do
    ip netns add "$(ns "$node")"
    ip -n "$(ns "$node")" link set lo up
    mkdir -p "/etc/netns/$(ns "$node")"
    printf '127.0.0.1 localhost\n192.0.2.1 node1\n192.0.2.2 node2\n' >"/etc/netns/$(ns "$node")/hosts"
    ((++i))
  done
  ip link add vtb-veth1 netns "$(ns node1)" type veth peer name vtb-veth2 netns "$(ns node2)"
  for i in 1 2; do
    ip -n "$(ns node$i)" addr add "192.0.2.$i/24" dev "vtb-veth$i"
    ip -n "$(ns node$i)" link set "vtb-veth$i" up
  done
}

case ${1:-} in
up) up ;;
down) down ;;
on) shift; on "$@" ;;
agent) shift; node=$1; shift; on "$node" sh -c "$*" ;;
*) echo "usage: cluster.sh up|down|on NODE CMD...|agent NODE CMD" >&2; exit 2 ;;
esac
