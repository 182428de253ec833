"""The `clipseg` command line (click); see `clipseg.cli.main`. Output encoders live in
`clipseg.inference.outputs` and `clipseg.io.rle`, shared with the HTTP service."""
