"""The Parquet lake: partitions, the input manifest, the run lock."""
