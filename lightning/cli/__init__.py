"""The ``lightning`` command line: parses arguments, loads config, calls into the node."""
