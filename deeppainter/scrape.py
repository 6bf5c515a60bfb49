"""``python -m deeppainter.scrape``: see deeppainter.cli.scrape."""
from deeppainter.cli.scrape import main

if __name__ == "__main__":
    main()
