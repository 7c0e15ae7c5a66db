"""Fuzzing campaigns for pyrocket's decoders (see fuzz/README.md)."""
