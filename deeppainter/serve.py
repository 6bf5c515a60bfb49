"""``python -m deeppainter.serve``: see deeppainter.cli.serve."""
from deeppainter.cli.serve import main

if __name__ == "__main__":
    main()
