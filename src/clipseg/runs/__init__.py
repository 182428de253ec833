"""Folder, stdin and sharded runs of many images through one model (the engine behind `clipseg segment`)."""
