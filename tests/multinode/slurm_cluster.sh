#!/usr/bin/env bash
# A two-node Slurm on the test hosts of cluster.sh (which must be up): slurmctld and one slurmd on node1
# (192.0.2.1), one slurmd on node2 (192.0.2.2), each daemon inside its node's namespaces, all state,
# logs and pid files under DIR. munged runs on the machine itself: its socket is a file every namespace
# reaches, so the nodes share one key as a cluster's do.
#   slurm_cluster.sh start DIR          start the daemons; prints `export SLURM_CONF=...`
#   slurm_cluster.sh slurmd DIR NODE    (re)start NODE's slurmd (after a fault killed it)
#   slurm_cluster.sh stop DIR           cancel every job, end the daemons (cluster.sh down ends the rest)
# Client commands (sbatch, squeue, scontrol) run on a node: `cluster.sh on node1 sbatch ...`.
set -euo pipefail
cmd=${1:?usage: slurm_cluster.sh start|slurmd|stop DIR} dir=${2:?usage: slurm_cluster.sh start|slurmd|stop DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/cluster.sh
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

me=slurm_cluster
source "$here/../slurm/slurm_common.sh"
start_slurmd() {  # node
  # Each node's own TmpFS, as on a cluster (Slurm's PMIx plugin puts per-step folders there, named by
  # job and step only: two nodes sharing one would collide).
  "$cluster" on "$1" sh -c 'mount --bind "$0" /run/vtb-node-tmp && exec slurmd -f "$1" -N "$2"' "$dir/tmp/$1" "$conf" "$1"
  wait_for 30 "$1 idle" "$cluster" on node1 sh -c "sinfo -h -n $1 -o %t | grep -qx idle"
}

case $cmd in
start)
  # Both nodes are this machine: the same CPUs and memory (a little under it, so no node drains).
  node=$(slurmd -C | head -1 | awk '{for (i = 2; i <= NF; ++i) { if ($i ~ /^RealMemory=/) { split($i, a, "="); $i = "RealMemory=" int(a[2] * 0.45) } if ($i !~ /^UpTime/) printf " %s", $i } }')
  mkdir -p "$dir"/{state,spool/node1,spool/node2,tmp/node1,tmp/node2,log,run} /run/vtb-node-tmp
  cat >"$conf" <<CONF
ClusterName=vtbnodes
SlurmctldHost=node1(192.0.2.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPort=6817
SlurmdPort=6818
TmpFS=/run/vtb-node-tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SlurmdTimeout=10
MessageTimeout=5
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName=node1 NodeAddr=192.0.2.1$node
NodeName=node2 NodeAddr=192.0.2.2$node
PartitionName=nodes Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP
CONF
  start_munged
  "$cluster" on node1 slurmctld -c -f "$conf"
  wait_for 20 "slurmctld UP" "$cluster" on node1 sh -c 'scontrol ping | grep -q "is UP"'
  start_slurmd node1
  start_slurmd node2
  echo "export SLURM_CONF=$conf"
  ;;
slurmd) start_slurmd "${3:?which node}" ;;
stop)
  if [[ -f $conf ]]; then
    "$cluster" on node1 sh -c 'scancel --full --signal=KILL --user=root; scancel --user=root' 2>/dev/null || true
  fi
  for f in "$dir"/run/slurmd-*.pid "$dir/run/slurmctld.pid"; do
    [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
  done
  rmdir /run/vtb-node-tmp 2>/dev/null || true
  # munged only if this script started it.
  [[ -f $(munged_pid_file) ]] && kill "$(cat "$(munged_pid_file)")" 2>/dev/null || true
  ;;
*) echo "usage: slurm_cluster.sh start|slurmd|stop DIR" >&2; exit 2 ;;
esac
