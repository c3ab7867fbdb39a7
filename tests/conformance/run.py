"""Runs the conformance suite against a running `tenant-sim --tls`.

Usage: python run.py SIM_JSON_FILE [FILTER]   (scripts/conformance.sh does it all)

SIM_JSON_FILE holds the emulator's start-up line; FILTER runs only the checks whose
"client call" contains it. Exit 0 when every check passed, 1 otherwise.
"""

import sys

import harness
import check_signin  # noqa: F401  (registers its checks)
import check_graph  # noqa: F401
import check_dataverse  # noqa: F401

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sim = harness.Sim.from_file(sys.argv[1])
    sys.exit(harness.run_all(sim, sys.argv[2] if len(sys.argv) > 2 else None))
