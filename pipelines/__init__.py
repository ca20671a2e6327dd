"""The pipeline language (pure, no Ray): spec, loader, templates, conditions, runner,
providers and tools. Load with :func:`pipelines.loader.load_pipeline`, run with
:class:`pipelines.runner.Runner`."""
