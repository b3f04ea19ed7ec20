"""`python -m rnnlab` runs the command line."""

from rnnlab.cli.main import main

main()
