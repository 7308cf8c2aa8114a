"""Each layer (tinyseg/layers/) against loop references, finite differences and its errors."""
