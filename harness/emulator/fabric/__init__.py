"""The emulator's network fabric: every endpoint and replication link as a TCP proxy.

All proxies run in one separate process (``server.py``) so forwarding does not
compete with the control plane's threads; ``FabricClient`` drives it over a
Unix socket with Toxiproxy-style toxics (latency, blackhole, reset, bandwidth).
Client endpoints that need no toxics can use the fast path, where a small C
pump (``pump.c``) forwards their bytes instead of Python.
"""

from harness.emulator.fabric.client import FabricClient, FabricError, start_fabric

__all__ = ["FabricClient", "FabricError", "start_fabric"]
