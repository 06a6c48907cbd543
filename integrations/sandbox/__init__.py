"""The outside world: faithful simulators of the external systems, with fault injection.

Nothing in this package imports the rest of the project. Serve a simulator in-process with
:func:`integrations.sandbox.inprocess.mount` (tests) or over loopback HTTP with
:func:`integrations.sandbox.server.serve` (demo, browser tests, benchmarks).
"""

from .base import DropResponse, Faults, SimRequest, SimResponse, Simulator

__all__ = ["DropResponse", "Faults", "SimRequest", "SimResponse", "Simulator"]
