#!/usr/bin/env bash
# A one-node Slurm cluster from Debian 12's packages (slurm-wlm 22.05), in a private folder.
#   local_slurm.sh start DIR   munged, slurmctld and slurmd, all state/logs/pids under DIR; prints the
#                              `export SLURM_CONF=...` line every client command needs
#   local_slurm.sh stop DIR    cancels every job, then ends slurmd, slurmctld and munged by their pid files
# Needs root (the daemons run as root and munge), packages slurmctld slurmd slurm-client munge.
set -euo pipefail
cmd=${1:?usage: local_slurm.sh start|stop DIR} dir=${2:?usage: local_slurm.sh start|stop DIR}
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

me=local_slurm
source "$(dirname "${BASH_SOURCE[0]}")/slurm_common.sh"

stop_pid_file() {
  local f=$1
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for ((i = 0; i < 100; ++i)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case $cmd in
start)
  host=$(hostname)
  # The node as slurmd sees it; RealMemory a little under the detected value so the node never drains.
  node=$(slurmd -C | head -1 | awk '{for (i = 1; i <= NF; ++i) if ($i ~ /^RealMemory=/) { split($i, a, "="); $i = "RealMemory=" int(a[2] * 0.9) } print}')
  mkdir -p "$dir"/{state,spool,log,run}
  cat >"$conf" <<CONF
ClusterName=vtbtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=30
InactiveLimit=0
MinJobAge=300
$node
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  start_munged
  slurmctld -c -f "$conf"
  wait_for 20 "slurmctld UP" bash -c 'scontrol ping | grep -q "is UP"'
  slurmd -f "$conf"
  wait_for 20 "node $host idle" bash -c "sinfo -h -n $host -o %t | grep -q idle"
  echo "export SLURM_CONF=$conf"
  ;;
stop)
  if [[ -f $conf ]]; then
    scancel --full --signal=KILL --user=root 2>/dev/null || true
    scancel --user=root 2>/dev/null || true
    for ((i = 0; i < 100; ++i)); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.1; done
  fi
  stop_pid_file "$dir/run/slurmd.pid"
  stop_pid_file "$dir/run/slurmctld.pid"
  pkill -f slurmstepd 2>/dev/null || true
  stop_pid_file "$(munged_pid_file)"
  ;;
*) echo "usage: local_slurm.sh start|stop DIR" >&2; exit 2 ;;
esac
