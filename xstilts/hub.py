"""`python -m xstilts.hub`: push a phase-2 encoder to the Hugging Face Hub, or stage what a push uploads (the command
line of xstilts.run.hub)."""

from .run.hub import main

if __name__ == "__main__":
    raise SystemExit(main())
