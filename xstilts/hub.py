"""`python -m xstilts.hub`: push a phase-2 encoder to the Hugging Face Hub, or stage what a push uploads.

The command line of :mod:`xstilts.run.hub`, kept at its old name.
"""

from .run.hub import main

if __name__ == "__main__":
    raise SystemExit(main())
