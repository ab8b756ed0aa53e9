"""Build stages. Each takes the tree of the stage it builds on and writes its own output."""
