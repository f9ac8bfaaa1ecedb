"""`python -m gitml.cli`: the gitml command."""

from gitml.cli import main

main()
