"""Files shipped inside the `pipelines` distribution, found through `importlib.resources`.

In the repository they live at the top level (`sql/`, `fixtures/`); pyproject.toml maps them to the
packages `pipelines._sql` and `pipelines._fixtures`, so an installed costwatch (editable or not)
reads the same files without a checkout beside it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sql_dir() -> Path:
    """The SQL models (`staging/`, `intermediate/`, `marts/`, `macros/`, `columns.yml`)."""
    return _on_disk(files("pipelines._sql"))


def fixture(relative_path: str) -> Path:
    """A shipped fixture by its path under `fixtures/`, e.g. `prices/model_prices.json`."""
    return _on_disk(files("pipelines._fixtures").joinpath(relative_path))


def demo_config_template() -> Path:
    """The demo's costwatch.yaml, the same text as the repository's own."""
    return _on_disk(files("pipelines.demo").joinpath("costwatch.yaml"))


def _on_disk(resource) -> Path:
    # The SQL engine globs folders and the config stores paths, so a zipped install would not do:
    # setuptools installs these as plain files (editable or not).
    path = Path(str(resource))
    if not path.exists():
        raise FileNotFoundError(f"{path}: package data missing; reinstall costwatch (pip install .)")
    return path
