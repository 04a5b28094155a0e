#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for testing the slurm profile (tests/pipeline/test_slurm.py):
#   slurm-one-node.sh start <dir>   install SLURM + munge (Debian packages) if missing, write a minimal
#                                   slurm.conf under <dir>, start munged, slurmctld and slurmd
#   slurm-one-node.sh start <dir> <cpus>   the same, the node declaring <cpus> CPUs whatever it has, so jobs
#                                   sized for a real cluster's nodes (a profile as written) are accepted
#                                   and run oversubscribed: for tests, never for measurements
#   slurm-one-node.sh stop <dir>    stop the daemons started from <dir>
# Needs root and apt-get (Debian/Ubuntu). No cgroups, no accounting database: finished jobs are recorded in
# <dir>/jobcomp.txt (read it with `sacct -c`), and Snakemake must poll with `--slurm-status-command squeue`.
# The config is <dir>/slurm.conf, linked from /etc/slurm/slurm.conf while the cluster runs (stop unlinks it).
set -euo pipefail
action=${1:?usage: slurm-one-node.sh start|stop <dir>}
dir=$(realpath -m "${2:?usage: slurm-one-node.sh start|stop <dir>}")
# SLURM's compiled-in config path. Jobs must find the config there too: snakemake-executor-plugin-slurm's
# job step drops SLURM_CONF before its nested srun, so start links it here (never over a real one).
default_conf=/etc/slurm/slurm.conf
# The daemons live in /usr/sbin, which a non-login shell's PATH may lack (env -i, some CI runners)
export PATH="$PATH:/usr/sbin:/sbin"

stop_pidfile() {
    local pidfile=$1
    if [[ -s $pidfile ]]; then
        local pid; pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    fi
}

if [[ $action == stop ]]; then
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    [[ $(readlink "$default_conf" 2>/dev/null) == "$dir/slurm.conf" ]] && rm -f "$default_conf"
    exit 0
fi
[[ $action == start ]] || { echo "unknown action '$action' (start or stop)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root (installs packages, runs slurmd)" >&2; exit 3; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || { echo "SLURM is not installed and apt-get is not available" >&2; exit 3; }
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurmctld slurmd slurm-client munge)
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi

# munge authenticates SLURM's messages; the package created its key. One munged serves every cluster here.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

mkdir -p "$dir/state" "$dir/spool"
host=$(hostname -s)
node=$(slurmd -C | head -n 1)   # NodeName=... CPUs=... RealMemory=...: what this machine has
overrides=""
if [[ -n ${3:-} ]]; then  # declare more CPUs than there are (one socket of <cpus> cores); slurmd must accept it
    node=$(sed -E "s/CPUs=[0-9]+/CPUs=$3/; s/Boards=[0-9]+/Boards=1/; s/SocketsPerBoard=[0-9]+/SocketsPerBoard=1/;
                   s/CoresPerSocket=[0-9]+/CoresPerSocket=$3/; s/ThreadsPerCore=[0-9]+/ThreadsPerCore=1/" <<<"$node")
    overrides="SlurmdParameters=config_overrides"
fi
cat > "$dir/slurm.conf" <<CONF
ClusterName=kdnas
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ReturnToService=2
# no cgroups here
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# cores and memory are consumable; without DefMemPerCPU a job asking no memory takes the whole node
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# no accounting daemon; finished jobs go to a text file (sacct -c)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
# finished jobs stay in squeue long enough for Snakemake's status checks
MinJobAge=600
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
$overrides
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

if [[ -e $default_conf || -L $default_conf ]] && [[ $(readlink "$default_conf") != "$dir/slurm.conf" ]]; then
    echo "$default_conf already exists (a real cluster's?); not replacing it" >&2; exit 3
fi
mkdir -p "$(dirname "$default_conf")" && ln -sfn "$dir/slurm.conf" "$default_conf"
export SLURM_CONF=$dir/slurm.conf
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
        echo "slurm up: $(sinfo -h -o '%P %D %c %m %t')"
        exit 0
    fi
    sleep 0.2
done
echo "slurm did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
