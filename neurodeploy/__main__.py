"""``python -m neurodeploy VERB ...``: the command line, as the ``neurodeploy`` script runs it."""

from .cli import main

if __name__ == "__main__":
    main()
