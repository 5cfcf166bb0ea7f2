"""Command-line tools: ``python -m focal_eiou_d2.tools.<name>``."""
