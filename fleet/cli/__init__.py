"""The command line: commands and rendering. The only code in fleet that prints."""
