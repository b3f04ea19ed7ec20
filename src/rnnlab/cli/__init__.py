"""The `rnnlab` command line: one thin module per command, handing off to the library."""
