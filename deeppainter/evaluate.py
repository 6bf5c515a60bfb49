"""``python -m deeppainter.evaluate``: see deeppainter.cli.evaluate."""
from deeppainter.cli.evaluate import main

if __name__ == "__main__":
    main()
