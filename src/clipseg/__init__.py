"""clipseg: image segmentation by text and image prompts."""
