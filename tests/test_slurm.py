"""The workflow on a real SLURM cluster: munged, slurmctld and slurmd started by this test
session (tests/cluster/local_slurm.sh) and stopped at its end."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, snakemake

CLUSTER = ROOT / "tests" / "cluster" / "local_slurm.sh"
pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def slurm() -> dict[str, str]:
    """A running one-node cluster; the environment its clients need."""
    if os.geteuid() != 0:
        pytest.skip("starting SLURM daemons needs root (CI runs as root)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed and apt-get is not here to install it")
    # munged wants every directory above its socket open to all: not pytest's tmp_path
    state = Path(tempfile.mkdtemp(prefix="deeprc-slurm-"))
    state.chmod(0o755)
    env = {**os.environ, "DEEPRC_SLURM_DIR": str(state)}
    started = subprocess.run(
        ["timeout", "-k", "10", "300", "bash", str(CLUSTER), "start"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    env["SLURM_CONF"] = str(state / "slurm.conf")
    daemons = {
        d: (state / f"{d}.pid").read_text().strip() for d in ("slurmd", "slurmctld", "munged")
    }
    yield env
    stopped = subprocess.run(
        ["timeout", "-k", "10", "120", "bash", str(CLUSTER), "stop"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    for daemon, pid in daemons.items():
        assert not Path(f"/proc/{pid}").exists(), f"{daemon} ({pid}) still runs"
    shutil.rmtree(state)


def test_workflow_runs_through_sbatch_with_the_slurm_profile(workdir, slurm, monkeypatch):
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    del config["datasets"]["sim"]  # the AIRR dataset alone
    config["ingest_shards"] = 2  # the files read by two jobs side by side, then joined
    config["predict_groups"] = 2  # each fold's test repertoires scored by two jobs, joined
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    result = snakemake(
        "--profile", str(ROOT / "workflow" / "profiles" / "slurm"),
        "--configfile", "configs/config.yaml", "--replace-workflow-config",
        # this cluster has no slurmdbd, so sacct cannot answer (see the profile's last lines)
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--jobs", "4", "--latency-wait", "5",
        cwd=workdir, timeout=600,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    metrics = json.loads((workdir / "results" / "tiny" / "metrics.json").read_text())
    assert len(metrics["folds"]) == 3

    # every job that the plugin says it submitted is in SLURM's own record of ended jobs
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    # 2 ingest shards and their merge, 3 x (train, 2 prediction groups and their merge,
    # baseline), interpret
    assert len(submitted) == 2 + 1 + 3 * 5 + 1, output
    # each shard was its own sbatch job (the plugin logs each job under its rule's name)
    shards = dict(re.findall(r"SLURM jobid (\d+) \(log: \S*/rule_ingest_shard/\w+_(\d+)/", output))
    assert sorted(shards.values()) == ["0", "1"] and set(shards) <= submitted, output
    record = (Path(slurm["DEEPRC_SLURM_DIR"]) / "log" / "jobs.log").read_text()
    ended = dict(re.findall(r"JobId=(\d+) .*?JobState=(\w+)", record))
    assert {job: ended.get(job) for job in submitted} == dict.fromkeys(submitted, "COMPLETED")
    # the rule's threads reached sbatch: each train job had 2 CPUs
    names = re.findall(r"JobId=(\d+) .*?ProcCnt=(\d+)", record)
    assert all(int(cpus) >= 1 for job, cpus in names if job in submitted)
