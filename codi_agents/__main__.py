"""`python -m codi_agents` runs the `codi` command line."""

from codi_agents.cli import main

main()
