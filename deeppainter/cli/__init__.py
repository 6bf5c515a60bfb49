"""The command line: shared options (common) and one module per ``python -m deeppainter.X`` command."""
