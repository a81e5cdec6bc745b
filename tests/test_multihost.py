"""Multi-controller JAX for real: two processes with two CPU devices each form one runtime on 127.0.0.1.

Each process runs tests/multihost_script.py and checks the multi-process run against its own
single-process run (see the script). A hang cannot outlive the launch: the processes get short
coordinator, heartbeat and shutdown timeouts, every process is killed as soon as one fails or
the launch runs past its deadline. The agreement rule for resuming is also tested directly.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from gamejax._src.training import checkpoint

SCRIPT = pathlib.Path(__file__).with_name("multihost_script.py")
PROCESSES = 2
DEADLINE = 150  # seconds for a whole launch; each process also exits on a check that hangs (the script)
CHECKS = {"train": 14, "checkpoints": 8}  # ok lines each process prints


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(part: str, workdir: pathlib.Path) -> list[str]:
    """Run the script's ``part`` in PROCESSES processes; their outputs, or a failure naming what went wrong."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    port = free_port()
    logs = [workdir / f"process-{i}.log" for i in range(PROCESSES)]
    procs = []
    for i, log in enumerate(logs):
        command = [sys.executable, str(SCRIPT), part, str(port), str(PROCESSES), str(i), str(workdir)]
        with open(log, "w") as out:
            procs.append(
                subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )
    deadline, failure = time.monotonic() + DEADLINE, None
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                failure = f"timed out after {DEADLINE} s"
                break
            if any(p.returncode not in (None, 0) for p in procs):
                failure = "a process failed"
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    outputs = [log.read_text() for log in logs]
    codes = [p.returncode for p in procs]
    if failure or any(codes):
        report = "\n".join(
            f"--- process {i} (exit {c}):\n{o[-4000:]}" for i, (c, o) in enumerate(zip(codes, outputs, strict=True))
        )
        pytest.fail(f"{failure or 'a process failed'}\n{report}")
    return outputs


@pytest.mark.parametrize("part", ["train", "checkpoints"])
def test_two_processes_equal_one(part, tmp_path):
    outputs = launch(part, tmp_path)
    for output in outputs:
        assert output.count("ok  ") == CHECKS[part], output


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ({0: [], 1: []}, None),  # a fresh run
        ({0: [4, 6], 1: [4, 6]}, 6),
        ({0: [4, 6], 1: [4]}, 4),  # one process's newest write never reached disk
        ({0: [2, 4], 1: [4, 6], 2: [4]}, 4),
    ],
)
def test_processes_resume_from_the_newest_common_step(steps, expected):
    assert checkpoint.agreed_step(steps, "runs/a") == expected


@pytest.mark.parametrize(
    ("steps", "named"),
    [
        ({0: [4, 6], 1: []}, "process 0: 4, 6; process 1: none"),  # crashed before its first write
        ({0: [4, 6], 1: [2]}, "process 0: 4, 6; process 1: 2"),  # behind by two
    ],
)
def test_processes_without_a_common_step_raise_naming_each_ones_steps(steps, named):
    with pytest.raises(ValueError, match=r"no checkpoint of a common step") as error:
        checkpoint.agreed_step(steps, "runs/a")
    assert named in str(error.value) and "ckpt_0000000006.npz" in str(error.value) and "runs/a" in str(error.value)
