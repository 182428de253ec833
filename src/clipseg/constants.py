"""Numbers the whole package agrees on (a leaf module: it imports nothing of clipseg)."""

VERSION = "0.1.0"

# CLIP's input normalisation (the reference implementations name these ImageNet's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The default threshold of masks, label maps ("none" below it) and presence, for a model whose
# weights name no recommended threshold of their own (see `clipseg.load`: the world models
# carry 0.22).
DEFAULT_THRESHOLD = 0.5

# The one definition of "present": at least this share of the image's pixels passes the
# threshold. The library, the command line, the HTTP service, the web page and the
# evaluation's "negatives rejected" (an absent thing's map under it) all use it, so the
# rejection rate in the tables is the rate of the answer users get. One percent of a
# 352 x 352 input is about five of its 16 px patches, the smallest blob the model resolves.
PRESENCE_MIN_FRACTION = 0.01

# The prompt template of the evaluation protocols (the paper's "a photo of a {}.").
EVAL_TEMPLATE = "a photo of a {}."
