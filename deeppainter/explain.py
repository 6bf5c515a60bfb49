"""``python -m deeppainter.explain``: see deeppainter.cli.explain."""
from deeppainter.cli.explain import main

if __name__ == "__main__":
    main()
