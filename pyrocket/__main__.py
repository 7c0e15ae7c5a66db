"""``python -m pyrocket`` runs the command-line interface."""

from pyrocket.cli import main

main()
