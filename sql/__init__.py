"""Package data, not code: installed as `pipelines._sql` (pyproject.toml), read through pipelines.resources.files."""
