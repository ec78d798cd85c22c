"""The book's own tooling: papermill runner, provenance, comparison, benchmark, citable results, build, CLI."""
