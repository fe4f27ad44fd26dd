#!/usr/bin/env bash
# A real one-node SLURM cluster (munged, slurmctld, slurmd from Debian's packages) for the
# workflow's cluster test. Run as root.
#
#   tests/cluster/local_slurm.sh install   apt-get the packages if a binary is missing
#   tests/cluster/local_slurm.sh start     start the daemons; prints the partition name last
#   tests/cluster/local_slurm.sh stop      stop exactly the daemons that start started
#
# State, logs and pid files live in $DEEPRC_SLURM_DIR (default /tmp/deeprc-slurm). Two things
# live outside it, because SLURM and the Snakemake plugin need them there:
#   - /etc/slurm/slurm.conf, a link to our config: the plugin's job step drops SLURM_CONF
#     before its inner srun, so the config must sit at SLURM's built-in path. An existing
#     config that is not ours is never touched (start fails instead).
#   - the Debian packages, when install had to add them.
set -euo pipefail

dir=${DEEPRC_SLURM_DIR:-/tmp/deeprc-slurm}
partition=deeprc
conf=$dir/slurm.conf
link=/etc/slurm/slurm.conf
say() { echo "[local-slurm] $*" >&2; }
fail() { say "error: $*"; exit 1; }

# pid file -> pid, if that process is alive and has the expected name
live_pid() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ -n $pid && -r /proc/$pid/comm && $(cat /proc/$pid/comm) == "$2" ]] && echo "$pid"
}

retry() {  # retry SECONDS command...: every 0.25 s until it succeeds
    local until=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < until)) || return 1
        sleep 0.25
    done
}

install() {
    local missing=0
    for binary in munged slurmctld slurmd sbatch squeue; do
        command -v "$binary" >/dev/null || missing=1
    done
    ((missing)) || return 0
    say "installing slurmctld slurmd slurm-client munge"
    # keep the packages' scripts from starting daemons of their own
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >&2
    if ((added)); then rm -f "$policy"; fi
}

start() {
    [[ $(id -u) == 0 ]] || fail "must run as root"
    install
    mkdir -p "$dir"/{state,spool,log}
    chmod 755 "$dir"
    local socket=$dir/munge.socket
    if ! live_pid "$dir/munged.pid" munged >/dev/null; then
        [[ -s $dir/munge.key ]] || mungekey --create --keyfile="$dir/munge.key" >&2
        chmod 600 "$dir/munge.key"
        rm -f "$socket" "$socket.lock"
        munged --key-file="$dir/munge.key" --socket="$socket" --pid-file="$dir/munged.pid" \
            --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed"
        retry 10 test -S "$socket" || fail "munged did not start ($dir/log/munged.log)"
    fi

    local node cpus memory
    node=$(hostname -s)
    cpus=$(nproc)
    # leave the kernel some memory so that slurmd's own count is never below the config's
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    cat >"$conf" <<CONF
ClusterName=deeprc-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd, so no sacct: clients ask squeue, which remembers ended jobs for MinJobAge s
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobs.log
MinJobAge=600
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that names no memory would take the whole node
DefMemPerCPU=1000
ReturnToService=2
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    mkdir -p "$(dirname "$link")"
    if [[ -L $link && $(readlink "$link") == "$conf" ]]; then
        :
    elif [[ -e $link || -L $link ]]; then
        fail "$link exists and is not ours; move it away or run the test elsewhere"
    else
        ln -s "$conf" "$link"
    fi
    export SLURM_CONF=$conf
    live_pid "$dir/slurmctld.pid" slurmctld >/dev/null || slurmctld -c
    retry 30 scontrol ping || fail "slurmctld does not answer ($dir/log/slurmctld.log)"
    live_pid "$dir/slurmd.pid" slurmd >/dev/null || slurmd
    retry 60 bash -c "sinfo -h -p $partition -o %T | grep -Eq '^(idle|mixed|allocated)$'" ||
        fail "node $node did not become idle ($dir/log/slurmd.log)"
    srun -p "$partition" -n1 -t 1 --mem=10 true || fail "a test job did not run"
    say "up: munged, slurmctld, slurmd (pid files in $dir)"
    echo "$partition"
}

stop() {
    export SLURM_CONF=$conf
    if live_pid "$dir/slurmctld.pid" slurmctld >/dev/null; then
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086  # one id a word
            scancel $jobs || true
            retry 30 bash -c '[[ -z $(squeue -h -o %i) ]]' || say "jobs still listed: $jobs"
        fi
    fi
    local daemon pid
    for daemon in slurmd slurmctld munged; do
        pid=$(live_pid "$dir/$daemon.pid" "$daemon") || continue
        kill "$pid"
        retry 30 test ! -e "/proc/$pid" || kill -9 "$pid" 2>/dev/null || true
        say "stopped $daemon ($pid)"
    done
    if [[ -L $link && $(readlink "$link") == "$conf" ]]; then rm -f "$link"; fi
}

case ${1:-} in
install | start | stop) "$1" ;;
*) fail "usage: $0 install|start|stop" ;;
esac
