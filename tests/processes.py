"""Launch several JAX processes that form one multi-controller runtime on 127.0.0.1, and never hang.

Used by the multi-host tests (tests/test_multihost.py and the README's ``train.py`` in
tests/test_readme.py): every process runs in its own session with two CPU devices, and all of
them are killed as soon as one fails (the others would wait for it in a collective) or the
launch runs past its deadline.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ENV = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_processes(
    commands: list[list[str]], workdir: pathlib.Path, deadline_s: float, cwd: pathlib.Path | None = None
) -> list[str]:
    """Run ``commands`` at once; their outputs, or ``pytest.fail`` with each process's exit code and log tail."""
    env = {**os.environ, **ENV}
    logs = [workdir / f"process-{i}.log" for i in range(len(commands))]
    procs = []
    for command, log in zip(commands, logs, strict=True):
        with open(log, "w") as out:
            procs.append(
                subprocess.Popen(
                    command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    deadline, failure = time.monotonic() + deadline_s, None
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                failure = f"timed out after {deadline_s} s"
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
