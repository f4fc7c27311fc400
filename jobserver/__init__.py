"""AeroFS job server: a Jupyter server extension (filled in by the jobserver package)."""
