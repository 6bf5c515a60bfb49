"""``python -m deeppainter.predict``: see deeppainter.cli.predict."""
from deeppainter.cli.predict import main

if __name__ == "__main__":
    main()
