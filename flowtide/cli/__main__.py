"""``python -m flowtide.cli``."""

from flowtide.cli import main

main()
