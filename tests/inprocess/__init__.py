"""The CLI against lab hosts in-process: `fleet ...` runs through its entry point in this
process (tests.support.cli) and reaches an `InProcessLab` (fleet.lab.inprocess: the lab's
hosts, faults, handlers and truth, no socket, no process) through a mock transport.

What these test is fleet's logic and output: audit → truth, plan, apply, drift, diagnose,
journal. The wire (SSH, WinRM, RDP), signals and the entry point as a process are tested by
tests/integration, once per contract.
"""
