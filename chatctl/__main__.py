"""`python -m chatctl` runs the command line."""

from chatctl import main

main()
