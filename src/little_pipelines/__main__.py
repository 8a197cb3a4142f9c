"""`python -m little_pipelines ...` is `lpipe ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
