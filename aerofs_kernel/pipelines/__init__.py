"""The pipeline registry: every pipeline by its public name."""

from __future__ import annotations

from aerofs_kernel.pipelines.base import OptionError, Pipeline, RunOutput

_REGISTRY: dict[str, Pipeline] = {}
_PIPELINE_MODULES = ("csv_to_parquet", "exif", "word_count", "log_sessions")


def register(pipeline: Pipeline) -> Pipeline:
    _REGISTRY[pipeline.name] = pipeline
    return pipeline


def _load() -> None:
    # Imported here, not at the top, so each pipeline module can import this package. Every module is
    # imported each time (a no-op once done): importing one pipeline module directly registers just
    # that one, so a non-empty registry does not mean a complete one.
    import importlib

    for module in _PIPELINE_MODULES:
        importlib.import_module(f"aerofs_kernel.pipelines.{module}")


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``; KeyError with the known names otherwise."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown pipeline {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_pipelines() -> list[Pipeline]:
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


__all__ = ["OptionError", "Pipeline", "RunOutput", "all_pipelines", "get_pipeline", "register"]
