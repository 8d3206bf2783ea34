"""The AIML API simulator (server.py; its job model in jobs.py), for tests, the local stack and the
demo. ``python -m local.simulator`` runs it standalone."""

from local.simulator.jobs import Job, SimConfig
from local.simulator.server import Simulator

__all__ = ["Job", "SimConfig", "Simulator"]
