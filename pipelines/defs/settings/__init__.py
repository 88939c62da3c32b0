"""Assets that write the config's settings as warehouse tables the SQL models join."""

# One Dagster UI group for every table built from costwatch.yaml rather than from input files.
SETTINGS_GROUP = "settings"
