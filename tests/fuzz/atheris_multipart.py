"""Coverage-guided fuzzing of the multipart header/parameter parser with atheris.

Run with ``make fuzz`` (installs atheris into the venv, runs for ``FUZZ_SECONDS``, 60 by
default). Not part of ``make test``. Any libFuzzer flag may be passed, e.g.::

    .venv/bin/python tests/fuzz/atheris_multipart.py -max_total_time=600 -timeout=5 corpus/

``-timeout`` (seconds per input) turns a super-linear parse into a reported crash: an input of
64 KiB parses in milliseconds. A crash leaves a ``crash-*`` file; replay it by passing its path.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import atheris

with atheris.instrument_imports():
    import forkloop.core.multipart  # noqa: F401

from fuzz_targets import MAX_INPUT, one_input


def main() -> None:
    argv = list(sys.argv)
    if not any(arg.startswith("-max_len=") for arg in argv):
        argv.append(f"-max_len={MAX_INPUT + 1}")
    if not any(arg.startswith("-timeout=") for arg in argv):
        argv.append("-timeout=5")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
