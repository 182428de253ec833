"""Pascal VOC class names and, per class, the words that name it (data).

VOC_WORDS stands in for the WordNet traversal of the paper (Sec. 5.2: Pascal classes are
assigned WordNet synsets and all lemmas of their hyponyms become forbidden words). WordNet
cannot be downloaded here (nltk's corpus needs a download), so the lists are written out by
hand: the lemmas of the synsets the reference implementation uses (PASCAL_SYNSETS in the
authors' datasets/phrasecut.py: aeroplane.n.01, bicycle.n.01, bird.n.01, boat.n.01 /
vessel.n.02, bottle.n.01, bus.n.01, car.n.01, cat.n.01, chair.n.01, cattle.n.01,
table.n.02, dog.n.01, horse.n.01, motorcycle.n.01, person.n.01 (the reference's explicit
list), pot_plant.n.01, sheep.n.01, sofa.n.01, train.n.01, television.n.03) and their
common hyponyms, plus a few obvious near-synonyms (kitten, calf, aircraft). Very rare
or highly ambiguous lemmas were left out (e.g. 'crane', 'kite', 'boxer', 'charger').
Words are singular and lower case; plurals are matched by the filter's lemmatizer.
"""

from __future__ import annotations

# Label index i + 1 in VOC label maps (0 = background, 255 = void border).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "dining table", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa",
    "train", "tv monitor",
)  # fmt: skip

# Other spellings people use for the same classes.
VOC_ALIASES = {
    "airplane": "aeroplane", "plane": "aeroplane", "diningtable": "dining table", "table": "dining table",
    "motorcycle": "motorbike", "pottedplant": "potted plant", "plant": "potted plant",
    "tvmonitor": "tv monitor", "tv": "tv monitor", "monitor": "tv monitor", "couch": "sofa",
    "cattle": "cow", "bike": "bicycle",
}  # fmt: skip


def voc_class(name: str) -> str:
    """Canonical VOC class name of `name` (aliases accepted); ValueError if unknown."""
    key = name.strip().lower().replace("_", " ")
    key = VOC_ALIASES.get(key, key)
    if key not in VOC_CLASSES:
        raise ValueError(f"unknown Pascal VOC class {name!r}; known: {', '.join(VOC_CLASSES)}")
    return key


VOC_WORDS: dict[str, tuple[str, ...]] = {
    "aeroplane": (
        "aeroplane", "airplane", "plane", "aircraft", "airliner", "jet", "jetliner", "jumbo jet", "jet plane",
        "fighter jet", "fighter plane", "warplane", "bomber", "biplane", "monoplane", "seaplane", "floatplane",
        "hydroplane", "propeller plane", "turboprop", "airbus",
    ),
    "bicycle": (
        "bicycle", "bike", "wheel", "cycle", "push bike", "pedal bike", "mountain bike", "road bike",
        "tandem", "tandem bicycle", "safety bicycle", "velocipede", "bmx",
    ),
    "bird": (
        "bird", "birdie", "chick", "hen", "cock", "rooster", "chicken", "poultry", "duck", "duckling",
        "drake", "goose", "gosling", "swan", "cygnet", "gull", "seagull", "sea gull", "seabird", "tern",
        "pelican", "albatross", "penguin", "puffin", "cormorant", "heron", "egret", "stork", "flamingo",
        "ibis", "pigeon", "dove", "parrot", "parakeet", "budgie", "budgerigar", "macaw", "cockatoo",
        "eagle", "hawk", "falcon", "owl", "vulture", "osprey", "condor", "songbird", "sparrow", "finch",
        "robin", "thrush", "wren", "warbler", "crow", "raven", "magpie", "blue jay", "starling", "lark",
        "blackbird", "bluebird", "cardinal", "canary", "hummingbird", "woodpecker", "kingfisher",
        "turkey", "pheasant", "quail", "grouse", "partridge", "peacock", "peafowl", "ostrich", "emu",
        "cuckoo", "mallard", "sandpiper", "waterfowl", "fowl",
    ),
    "boat": (
        "boat", "ship", "vessel", "watercraft", "canoe", "kayak", "sailboat", "sailing boat", "sailing ship",
        "yacht", "ferry", "ferryboat", "speedboat", "motorboat", "powerboat", "rowboat", "rowing boat",
        "dinghy", "lifeboat", "gondola", "barge", "tugboat", "tug", "fishing boat", "houseboat",
        "catamaran", "trawler", "steamboat", "steamer", "cruise ship", "ocean liner", "freighter",
        "warship", "battleship", "submarine", "schooner", "skiff", "paddleboat", "paddle boat", "pontoon",
        "raft", "jet ski", "water scooter",
    ),
    "bottle": (
        "bottle", "beer bottle", "wine bottle", "water bottle", "soda bottle", "pop bottle", "milk bottle",
        "whiskey bottle", "pill bottle", "ketchup bottle", "catsup bottle", "carafe", "decanter", "flask",
        "hip flask", "vacuum flask", "thermos", "jug", "vial", "phial", "ampule", "demijohn", "carboy",
        "canteen", "flagon",
    ),
    "bus": (
        "bus", "autobus", "coach", "charabanc", "double decker", "double-decker", "jitney", "motorbus",
        "motorcoach", "omnibus", "minibus", "school bus", "trolleybus", "trolley bus", "shuttle bus",
    ),
    "car": (
        "car", "auto", "automobile", "machine", "motorcar", "ambulance", "station wagon", "estate car",
        "cab", "taxi", "taxicab", "compact car", "convertible", "coupe", "police car", "squad car",
        "patrol car", "electric car", "hatchback", "hot rod", "jeep", "land rover", "limousine", "limo",
        "minicar", "minivan", "race car", "racing car", "racecar", "roadster", "sedan", "suv",
        "sport utility", "sports car", "stock car", "subcompact", "jalopy",
    ),
    "cat": (
        "cat", "true cat", "domestic cat", "house cat", "kitty", "kitty cat", "puss", "pussy", "pussycat",
        "kitten", "tabby", "tabby cat", "tomcat", "alley cat", "mouser", "angora", "siamese cat",
        "persian cat", "burmese cat", "egyptian cat", "abyssinian", "manx", "manx cat", "wildcat",
        "lynx", "bobcat", "ocelot", "serval", "caracal", "cougar", "puma", "mountain lion",
    ),
    "chair": (
        "chair", "armchair", "barber chair", "chaise", "chaise longue", "folding chair", "highchair",
        "high chair", "feeding chair", "ladder-back", "lawn chair", "garden chair", "deck chair",
        "beach chair", "rocking chair", "rocker", "straight chair", "side chair", "swivel chair",
        "office chair", "desk chair", "wheelchair", "windsor chair", "wing chair", "club chair",
        "easy chair", "recliner", "reclining chair", "lounger", "morris chair", "camp chair",
    ),
    "cow": (
        "cow", "cattle", "kine", "oxen", "ox", "bull", "bullock", "steer", "heifer", "calf", "moo-cow",
        "beef cattle", "dairy cattle", "dairy cow", "milch cow", "milk cow", "longhorn", "hereford",
        "angus", "aberdeen angus", "holstein", "friesian", "brahman", "zebu", "galloway", "shorthorn",
    ),
    "dining table": (
        "table", "dining table", "dinner table", "kitchen table", "breakfast table", "coffee table",
        "cocktail table", "side table", "end table", "picnic table", "desk", "writing desk", "work table",
        "worktable", "card table", "pool table", "billiard table", "conference table", "dressing table",
        "night table", "nightstand", "tea table", "trestle table", "operating table", "console table",
        "drafting table", "pedestal table", "tabletop", "table top",
    ),
    "dog": (
        "dog", "domestic dog", "doggy", "doggie", "pooch", "puppy", "pup", "hound", "cur", "mutt", "mongrel",
        "lapdog", "toy dog", "hunting dog", "working dog", "sheepdog", "shepherd dog", "german shepherd",
        "police dog", "terrier", "bull terrier", "pit bull", "jack russell", "poodle", "retriever",
        "labrador", "golden retriever", "spaniel", "cocker spaniel", "collie", "border collie", "husky",
        "malamute", "beagle", "dachshund", "chihuahua", "pug", "bulldog", "dalmatian", "rottweiler",
        "doberman", "greyhound", "whippet", "corgi", "schnauzer", "pomeranian", "shih tzu", "great dane",
        "mastiff", "saint bernard", "st bernard", "pekinese", "basset", "basset hound", "bloodhound",
        "setter", "chow", "foxhound", "wolfhound",
    ),
    "horse": (
        "horse", "pony", "foal", "colt", "filly", "mare", "stallion", "gelding", "steed", "bronco",
        "mustang", "pinto", "palomino", "thoroughbred", "racehorse", "race horse", "draft horse",
        "carthorse", "cart horse", "workhorse", "packhorse", "pack horse", "warhorse", "arabian",
        "clydesdale", "quarter horse", "appaloosa", "polo pony", "shetland pony", "nag", "equine",
    ),
    "motorbike": (
        "motorbike", "motorcycle", "bike", "minibike", "moped", "motor scooter", "scooter", "trail bike",
        "dirt bike", "scrambler", "chopper", "motocross",
    ),
    # The reference's explicit list for person.n.01 (its hyponym tree is far too large).
    "person": ("person", "human", "man", "woman", "toddler", "baby", "body", "child", "infant"),
    "potted plant": (
        "potted plant", "pot plant", "houseplant", "house plant", "plant pot", "flowerpot", "flower pot",
        "planter",
    ),
    "sheep": (
        "sheep", "ram", "tup", "ewe", "lamb", "black sheep", "domestic sheep", "merino", "wild sheep",
        "bighorn", "mouflon", "argali",
    ),
    "sofa": (
        "sofa", "couch", "lounge", "chesterfield", "divan", "love seat", "loveseat", "settee", "sofa bed",
        "sofabed", "futon", "sectional", "davenport", "studio couch",
    ),
    "train": (
        "train", "railroad train", "railway train", "freight train", "passenger train", "subway train",
        "mail train", "commuter train", "streamliner", "locomotive", "steam locomotive", "bullet train",
    ),
    "tv monitor": (
        "tv", "television", "telly", "tv set", "television set", "television receiver", "monitor",
        "computer monitor", "computer screen", "flat screen", "flatscreen", "boob tube", "idiot box",
    ),
}
