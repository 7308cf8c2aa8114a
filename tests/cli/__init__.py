"""The command line (tinyseg train / predict / evaluate), end to end on tiny data."""
