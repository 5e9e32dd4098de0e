"""One module per command; each exposes a click command registered in main.py."""
