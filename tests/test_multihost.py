"""Multi-controller JAX for real: two processes with two CPU devices each form one runtime on 127.0.0.1.

Each process runs tests/multihost_script.py and checks the multi-process run against its own
single-process run (see the script). A hang cannot outlive the launch: the processes get short
coordinator, heartbeat and shutdown timeouts, every process is killed as soon as one fails or
the launch runs past its deadline. The agreement rule for resuming is also tested directly.
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from processes import free_port, run_processes

from gamejax._src.training import checkpoint

SCRIPT = pathlib.Path(__file__).with_name("multihost_script.py")
PROCESSES = 2
DEADLINE = 150  # seconds for a whole launch; each process also exits on a check that hangs (the script)
CHECKS = {"train": 14, "checkpoints": 8}  # ok lines each process prints


def launch(part: str, workdir: pathlib.Path) -> list[str]:
    """Run the script's ``part`` in PROCESSES processes; their outputs, or a failure naming what went wrong."""
    port = free_port()
    commands = [
        [sys.executable, str(SCRIPT), part, str(port), str(PROCESSES), str(i), str(workdir)] for i in range(PROCESSES)
    ]
    return run_processes(commands, workdir, DEADLINE)


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
