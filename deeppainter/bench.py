"""``python -m deeppainter.bench``: see deeppainter.cli.bench."""
from deeppainter.cli.bench import main

if __name__ == "__main__":
    main()
