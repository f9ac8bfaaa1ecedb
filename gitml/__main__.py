"""`python -m gitml`: the gitml command."""

from gitml.cli import main

main()
