"""deeppainter: reproducible DeepPainter painter classification (David & Netanyahu 2016)."""
__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter hides our own output; users can still set their own level.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
