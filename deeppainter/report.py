"""``python -m deeppainter.report``: see deeppainter.cli.report."""
from deeppainter.cli.report import main

if __name__ == "__main__":
    main()
