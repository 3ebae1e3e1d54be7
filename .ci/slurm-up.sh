#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine from Debian's packages, for the cluster
# test (tests/workflow/test_cluster_slurm.py) and for trying the cluster route by hand. Run as root.
#
#   .ci/slurm-up.sh                  # without accounting (no slurmdbd: `sacct` fails)
#   .ci/slurm-up.sh --accounting     # with slurmdbd + MariaDB (sacct works; account 'bilinrec')
#   .ci/slurm-up.sh --down           # stop the daemons this script started
#   BILINREC_SLURM_CPUS=8 .ci/slurm-up.sh   # declare the node with 8 CPUs (default: its cores)
#
# Installs slurm-wlm and munge (plus slurmdbd and mariadb-server with --accounting) with apt-get
# when missing, writes /etc/slurm/slurm.conf (one node = this machine, one default partition
# 'debug'), and starts the daemons directly (no systemd needed): munged, [mariadbd, slurmdbd,]
# slurmctld, slurmd. Running it again reconfigures and restarts them. Exits non-zero, with the
# reason on stderr, when a package cannot be installed or a daemon does not come up.
set -euo pipefail

MODE=none
case "${1:-}" in
  --accounting) MODE=slurmdbd ;;
  --no-accounting | "") MODE=none ;;
  --down) MODE=down ;;
  *) echo "usage: $0 [--accounting|--no-accounting|--down]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

CLUSTER=bilinrec
ACCOUNT=bilinrec
LOGDIR=/var/log/slurm
RUNDIR=/run/bilinrec-slurm
mkdir -p "$LOGDIR" "$RUNDIR" /var/spool/slurmctld /var/spool/slurmd /etc/slurm

stop() {  # stop a daemon this script started: stop PIDFILE NAME (NAME: the process's comm)
  local pidfile="$1" name="$2"
  if [ -s "$pidfile" ]; then
    local pid
    pid="$(cat "$pidfile")"
    # only that daemon: a stale pid file may name a process that has since reused the pid
    if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND until it succeeds
  local seconds="$1" what="$2"
  shift 2
  for _ in $(seq $((seconds * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "slurm-up: $what did not come up in ${seconds}s" >&2
  return 1
}

stop_slurm() {
  stop "$RUNDIR/slurmd.pid" slurmd
  stop "$RUNDIR/slurmctld.pid" slurmctld
  stop "$RUNDIR/slurmdbd.pid" slurmdbd
}

if [ "$MODE" = down ]; then
  stop_slurm
  stop "$RUNDIR/mariadbd.pid" mariadbd
  stop "$RUNDIR/munged.pid" munged
  exit 0
fi

# --- packages ---------------------------------------------------------------------------------
need=()
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
if [ "$MODE" = slurmdbd ]; then
  command -v slurmdbd >/dev/null || need+=(slurmdbd)
  command -v mariadbd >/dev/null || need+=(mariadb-server)
fi
if [ "${#need[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "slurm-up: no apt-get to install ${need[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || { echo "slurm-up: apt-get update failed" >&2; exit 1; }
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "slurm-up: apt-get install ${need[*]} failed" >&2; exit 1; }
fi

stop_slurm

# --- munge ------------------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  stop "$RUNDIR/munged.pid" munged
  [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged --force --pid-file=/run/munge/munged.pid
  wait_for 10 munged sh -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUNDIR/munged.pid"
fi

# --- slurm.conf -------------------------------------------------------------------------------
HOST="$(hostname -s)"
NODE="$(slurmd -C | head -1)"  # NodeName=... CPUs=... RealMemory=... as slurmd detects them
# BILINREC_SLURM_CPUS=N declares N CPUs instead (slurmd then trusts the config): with more CPUs
# than cores, short jobs that mostly wait (start-up, polling) overlap; .ci/run declares 2 per core.
OVERRIDES=""
if [ -n "${BILINREC_SLURM_CPUS:-}" ]; then
  [[ "$BILINREC_SLURM_CPUS" =~ ^[1-9][0-9]*$ ]] || { echo "slurm-up: BILINREC_SLURM_CPUS must be a positive integer, got '$BILINREC_SLURM_CPUS'" >&2; exit 2; }
  NODE="$(echo "$NODE" | sed -E "s/CPUs=[0-9]+/CPUs=$BILINREC_SLURM_CPUS/; s/Boards=[0-9]+ SocketsPerBoard=[0-9]+ CoresPerSocket=[0-9]+ ThreadsPerCore=[0-9]+/Boards=1 SocketsPerBoard=1 CoresPerSocket=$BILINREC_SLURM_CPUS ThreadsPerCore=1/")"
  OVERRIDES="SlurmdParameters=config_overrides"
fi
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUNDIR/slurmctld.pid
SlurmdPidFile=$RUNDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# No cgroups in a container: track processes by parent, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
# Schedule cores and memory: a job gets the CPUs and memory it asks for, no more.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
# Finished jobs stay visible to squeue/scontrol for an hour (status queries without accounting).
MinJobAge=3600
AccountingStorageType=accounting_storage/$MODE
AccountingStorageHost=localhost
JobCompType=jobcomp/none
$OVERRIDES
$NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# --- MariaDB + slurmdbd (accounting only) -----------------------------------------------------
if [ "$MODE" = slurmdbd ]; then
  if ! mariadb -e 'select 1' >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid >"$LOGDIR/mariadb.log" 2>&1 &
    echo $! >"$RUNDIR/mariadbd.pid"
    wait_for 60 mariadbd mariadb -e 'select 1'
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'bilinrec-slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=bilinrec-slurm
StorageLoc=slurm_acct_db
PidFile=$RUNDIR/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  /usr/sbin/slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
fi

if [ "$MODE" = slurmdbd ]; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=bilinrec Organization=bilinrec >/dev/null 2>&1 || true
  sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
fi

/usr/sbin/slurmctld
wait_for 30 slurmctld scontrol ping
/usr/sbin/slurmd
wait_for 30 "node $HOST" sh -c "sinfo -h -n '$HOST' -o %t | grep -Eq '^(idle|mix|alloc)'"
scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
echo "slurm-up: single-node SLURM up (accounting: $MODE)"
sinfo
