"""``python -m deeppainter.standardize``: see deeppainter.cli.standardize."""
from deeppainter.cli.standardize import main

if __name__ == "__main__":
    main()
