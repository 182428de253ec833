"""The one error type of checkpoint loading."""


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not fit the model; the message names the
    file, the format found, and the missing or unexpected keys."""
