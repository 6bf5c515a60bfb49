"""Data: the WikiArt client and scraper, the standardiser, labelled/unlabelled image sets, batches, splits."""
