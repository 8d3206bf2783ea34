"""``python -m local.simulator``: the simulator on its own, until Ctrl-C (see server.py)."""

from local.simulator.server import main

main()
