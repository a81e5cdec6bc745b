"""Data parallelism and sharded sweeps on 8 simulated CPU devices (in a subprocess: the device
count is fixed when JAX starts). See tests/multidevice_script.py for the checks."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).with_name("multidevice_script.py")


def test_every_method_on_8_devices_equals_one_device_and_sweeps_shard():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert done.stdout.count("ok  ") == 23, done.stdout
