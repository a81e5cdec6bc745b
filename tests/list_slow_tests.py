"""Write tests/slow_tests.txt from a full run's JUnit XML: the tests the fast loop leaves out.

    pytest -n 2 --junitxml=/tmp/full.xml && python tests/list_slow_tests.py /tmp/full.xml

A test is slow when its last measured call took more than ``THRESHOLD_S`` seconds under
``pytest -n 2``; tests/conftest.py marks those (and whole slow modules) ``slow``, so that
``pytest -n 2 -m "not slow"`` stays under three minutes on two cores. A new test counts as
fast until the list is written again.
"""

from __future__ import annotations

import pathlib
import sys
import xml.etree.ElementTree as ET

THRESHOLD_S = 0.75
OUT = pathlib.Path(__file__).with_name("slow_tests.txt")
HEADER = f"""\
# Tests that took over {THRESHOLD_S:g} s in the last measured full run (pytest -n 2, 2 CPU cores):
# pytest -m "not slow" leaves them out. Written by tests/list_slow_tests.py; do not edit by hand.
"""


def node_id(classname: str, name: str) -> str:
    """``tests.test_common`` + ``test_x[gda]`` → ``tests/test_common.py::test_x[gda]`` (classes kept)."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = pathlib.Path(*parts[:cut]).with_suffix(".py")
        if (OUT.parent.parent / path).exists():
            return "::".join([path.as_posix(), *parts[cut:], name])
    raise ValueError(f"no test file for {classname!r}")


def main(junit: str) -> None:
    slow = sorted(
        node_id(case.get("classname"), case.get("name"))
        for case in ET.parse(junit).getroot().iter("testcase")
        if float(case.get("time", 0)) > THRESHOLD_S and case.get("classname", "").startswith("tests.")
    )
    OUT.write_text(HEADER + "".join(f"{test}\n" for test in slow))
    print(f"{len(slow)} slow tests written to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
