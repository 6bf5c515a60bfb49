"""deeppainter: reproducible DeepPainter painter classification (David & Netanyahu 2016)."""
__version__ = "0.1.0"
