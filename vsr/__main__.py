"""`python -m vsr`: the same as the `vsr` command."""

from .cli import main_exit

main_exit()
