"""``python -m deeppainter.cv10``: see deeppainter.cli.cv10."""
from deeppainter.cli.cv10 import main

if __name__ == "__main__":
    main()
