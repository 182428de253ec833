"""The `clipseg` command line (click); see `clipseg.cli.main`.

The RLE and output encoders (`clipseg.cli.rle`, `clipseg.cli.outputs`) have no CLI
dependency and are shared with the HTTP service.
"""
