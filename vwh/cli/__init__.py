"""The command-line layer: parse, call the library, render, exit. Nothing else."""
