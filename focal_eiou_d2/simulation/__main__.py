"""Entry point of ``python -m focal_eiou_d2.simulation``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
