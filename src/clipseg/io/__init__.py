"""The lowest layer: image reading and writing, atomic files, RLE, progress bars, array ops."""
