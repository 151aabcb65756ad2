"""`python -m xstilts.retrieval_data tatoeba`: XTREME-R's Tatoeba languages from LASER (make data-tatoeba).

The command line of :mod:`xstilts.prepare.tatoeba_laser` (``python -m xstilts.prepare.tatoeba_laser``), kept at its
old name with its one sub-command.
"""

import sys

from .prepare import tatoeba_laser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["tatoeba"]:
        print("usage: python -m xstilts.retrieval_data tatoeba [--out_dir ...] [--langs ...] [--base_url ...] "
              "[--record_checksums]\n(the same as python -m xstilts.prepare.tatoeba_laser)", file=sys.stderr)
        return 2
    return tatoeba_laser.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
