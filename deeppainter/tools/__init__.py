"""Tools: the benchmark and FLOP counting."""
