"""The prompt templates of PhraseCut+ (SPEC "Data sets", after CLIP's prompt engineering)."""

PROMPT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photograph of a {}.",
    "an image of a {}.",
    "{}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "a photo of one {}.",
    "a bad photo of a {}.",
    "a photo of the {}.",
)
