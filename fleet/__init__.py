"""fleet: audit and repair fleets of Windows Remote Desktop hosts over PowerShell remoting."""

__version__ = "0.1.0"
