"""Reports: one module per format, each a pure `render(result, *, drift=None) -> str`."""
