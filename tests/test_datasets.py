import json
import shutil

import numpy as np
import pytest
import torch

from clipseg.datasets import (
    PROMPT_TEMPLATES,
    VOC_CLASSES,
    Coco20i,
    CocoFolder,
    FolderConfig,
    LvisGeneralized,
    LvisGeneralizedConfig,
    LvisObjects,
    LvisObjectsConfig,
    NoSplitError,
    ObjectSample,
    OneShotConfig,
    Pascal5i,
    PascalZeroShot,
    PascalZeroShotConfig,
    PhraseCut,
    PhraseCutConfig,
    PhraseCutPlus,
    PhraseCutPlusConfig,
    PhraseFolder,
    coco20i_fold_category_ids,
    is_prompt_allowed,
    pascal5i_fold_classes,
    unseen_classes,
)
from clipseg.datasets.crops import object_aware_crop
from clipseg.datasets.masks import decode_rle, rasterize_polygons, segmentation_to_mask
from clipseg.io.image_io import ImageError
from clipseg.datasets.sample import Sample, collate
from clipseg.prompts.visual import VisualPromptConfig

from fixtures_datasets import (
    encode_rle_string,
    flat_rect,
    phrasecut_tasks,
    rect_polygon,
    write_coco_json,
    write_image,
    write_lvis_objects,
    write_phrase_folder,
    write_phrasecut,
    write_voc,
)

SIZE = 64  # small model input keeps the tests fast
VP = VisualPromptConfig(size=32)


# --- geometry ------------------------------------------------------------------------------
def test_rasterised_polygon_covers_expected_pixels():
    mask = rasterize_polygons([rect_polygon(2, 3, 6, 5)], height=8, width=10)
    expected = np.zeros((8, 10), bool)
    expected[3:6, 2:7] = True  # outline included: rows 3..5, columns 2..6
    assert np.array_equal(mask, expected)
    tri = rasterize_polygons([[[0, 0], [9, 0], [0, 9]]], 10, 10)
    assert tri[0, 9] and tri[9, 0] and not tri[9, 9] and tri.sum() == 55  # the lower-left triangle


def test_rle_decoding_uncompressed_and_compressed():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 9)) < 0.4
    assert np.array_equal(decode_rle(encode_rle_string(mask)), mask)
    runs = [3, 2, 58]  # column-major: pixels 3, 4 of column 0 are foreground
    expected = np.zeros((7, 9), bool)
    expected[3:5, 0] = True
    assert np.array_equal(decode_rle({"size": [7, 9], "counts": runs}), expected)
    polygon = rasterize_polygons([rect_polygon(1, 1, 3, 2)], 7, 9)
    assert np.array_equal(segmentation_to_mask([flat_rect(1, 1, 3, 2)], 7, 9), polygon)


# --- PhraseCut ------------------------------------------------------------------------------
@pytest.fixture()
def phrasecut_root(tmp_path):
    root = tmp_path / "VGPhraseCut_v0"
    write_phrasecut(root, "train", phrasecut_tasks())
    write_phrasecut(root, "val", phrasecut_tasks(2))
    return root


def test_phrasecut_reads_tasks_and_rasterises_instances(phrasecut_root):
    ds = PhraseCut(phrasecut_root, "val", PhraseCutConfig(image_size=SIZE))
    assert len(ds) == 6
    image, mask, task = ds.load(1)  # 'tree': two instances, the second with two polygons
    assert (image.width, image.height) == (64, 48) and task.phrase == "tree"
    expected = np.zeros((48, 64), bool)
    expected[0:10, 0:10] = expected[30:40, 50:60] = expected[40:46, 40:46] = True
    assert np.array_equal(mask, expected)
    s = ds[0]
    assert s.image.shape == (3, SIZE, SIZE) and s.mask.shape == (1, SIZE, SIZE)
    assert set(s.mask.unique().tolist()) == {0.0, 1.0}
    assert s.phrase == "red car" and s.class_name == ds.tasks[0].task_id and s.support is None
    assert ds.samples_by_phrase["red car"] == [0, 3]


def test_phrasecut_errors_name_the_missing_path(phrasecut_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="refer_test.json"):
        PhraseCut(phrasecut_root, "test")
    with pytest.raises(FileNotFoundError, match="images"):
        PhraseCut(tmp_path, "val")
    (phrasecut_root / "images" / "1001.jpg").unlink()
    ds = PhraseCut(phrasecut_root, "val")
    with pytest.raises(ImageError, match="1001.jpg"):
        ds.load(3)
    entries = json.loads((phrasecut_root / "refer_val.json").read_text())
    del entries[2]["Polygons"]
    (phrasecut_root / "refer_val.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="task 2 has no field 'Polygons'"):
        PhraseCut(phrasecut_root, "val")


def test_phrasecut_exclude_classes(phrasecut_root):
    entries = json.loads((phrasecut_root / "refer_val.json").read_text())
    entries[0]["phrase"] = "two brown cows"
    (phrasecut_root / "refer_val.json").write_text(json.dumps(entries))
    ds = PhraseCut(phrasecut_root, "val", PhraseCutConfig(exclude_classes=unseen_classes(4)))
    assert len(ds) == 5 and all("cow" not in t.phrase for t in ds.tasks)


def _plus(root, **kw):
    cfg = dict(image_size=SIZE, visual_prompt=VP)
    cfg.update(kw)
    return PhraseCutPlus(root, "train", PhraseCutPlusConfig(**cfg))


def test_phrasecut_plus_negative_rate_templates_and_supports(phrasecut_root):
    ds = _plus(phrasecut_root, with_visual=False, crop=False)
    n, negatives = 0, 0
    for epoch in range(34):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            n += 1
            negatives += s.is_negative
            assert any(s.phrase == t.format(p) for t in PROMPT_TEMPLATES for p in ds.base.phrases)
            original = ds.base.tasks[i].phrase
            if s.is_negative:
                assert s.mask.sum() == 0 and not any(s.phrase == t.format(original) for t in PROMPT_TEMPLATES)
            else:
                assert s.mask.sum() > 0
    assert n == 612 and abs(negatives / n - 0.2) < 0.05  # 3 sigma = 0.048

    ds = _plus(phrasecut_root, negative_prob=0.0)
    shared, unique = ds[0], ds[2]  # 'red car' has 6 samples; 'unique thing 0' one
    assert shared.support is not None and shared.support.shape == (3, 32, 32)
    assert unique.support is None


def test_phrasecut_plus_is_deterministic_per_seed_and_epoch(phrasecut_root):
    a, b = _plus(phrasecut_root, crop_scale=(0.5, 1.0)), _plus(phrasecut_root, crop_scale=(0.5, 1.0))
    c = _plus(phrasecut_root, crop_scale=(0.5, 1.0), seed=1)
    for i in range(6):
        x, y = a[i], b[i]
        assert torch.equal(x.image, y.image) and torch.equal(x.mask, y.mask) and x.phrase == y.phrase
        assert (x.support is None and y.support is None) or torch.equal(x.support, y.support)
    assert any(not torch.equal(a[i].image, c[i].image) or a[i].phrase != c[i].phrase for i in range(6))
    before = [a[i].image for i in range(6)]
    a.set_epoch(1)
    assert any(not torch.equal(before[i], a[i].image) for i in range(6))


def test_object_aware_crops_keep_the_object():
    rng = np.random.default_rng(0)
    for trial in range(200):
        h, w = rng.integers(40, 120, 2)
        mask = np.zeros((h, w), bool)
        oh, ow = rng.integers(round(0.3 * min(h, w)), round(0.5 * min(h, w)), 2)  # 5 % of any crop is reachable
        y, x = rng.integers(0, h - oh), rng.integers(0, w - ow)
        mask[y : y + oh, x : x + ow] = True
        y0, x0, side = object_aware_crop(mask, rng, 0.05, scale=(0.5, 1.0), tries=50)
        assert 0 <= y0 and y0 + side <= h and 0 <= x0 and x0 + side <= w
        assert round(0.5 * min(h, w)) <= side <= min(h, w)
        assert mask[y0 : y0 + side, x0 : x0 + side].sum() > 0.05 * side * side
    tiny = np.zeros((100, 100), bool)
    tiny[90, 90] = True  # can never fill 5 %: the crop with the most object pixels is returned
    y0, x0, side = object_aware_crop(tiny, rng, 0.05, scale=(0.3, 0.3))
    assert tiny[y0 : y0 + side, x0 : x0 + side].any()


def test_phrasecut_plus_crops_keep_object_area(phrasecut_root):
    ds = _plus(phrasecut_root, negative_prob=0.0, with_visual=False, crop_scale=(0.6, 1.0))
    for i in range(len(ds)):
        assert ds[i].mask.mean() > 0.04  # > 5 % of the crop, up to nearest-resize rounding


# --- Pascal-5i, COCO-20i ------------------------------------------------------------------------
def test_pascal5i_folds_masks_and_supports(tmp_path):
    labels = write_voc(tmp_path / "VOC2012")
    cfg = OneShotConfig(image_size=SIZE, visual_prompt=VP)
    ds = Pascal5i(tmp_path / "VOC2012", "val", fold=0, config=cfg)
    assert pascal5i_fold_classes(0) == [1, 2, 3, 4, 5]
    assert {c for _, c in ds.records} == {1, 2, 3, 4} and len(ds) == 8
    key, cls = ds.records[0]
    s = ds[0]
    assert s.class_name == VOC_CLASSES[cls - 1] and s.phrase == f"a photo of a {VOC_CLASSES[cls - 1]}."
    assert s.support is not None and s.support.shape == (3, 32, 32)
    image, mask, valid = ds.load(key, cls)
    assert np.array_equal(mask, labels[key] == cls) and np.array_equal(valid, labels[key] != 255)
    assert s.valid is not None and s.valid.dtype == torch.bool and not s.valid.all()
    other = ds.support_key(key, cls, np.random.default_rng(0))
    assert other != key and (other, cls) in ds.records
    train = Pascal5i(tmp_path / "VOC2012", "train", fold=0, config=cfg)
    assert {c for _, c in train.records} == {14}  # motorbike, fold 2
    assert len(Pascal5i(tmp_path / "VOC2012", "val", 0, OneShotConfig(episodes=20))) == 20


def test_pascal5i_errors(tmp_path):
    root = tmp_path / "VOC2012"
    write_voc(root, n_images=2)
    (root / "splits" / "pascal" / "val" / "fold1.txt").write_text("2008_000000__7\nbroken line\n")
    with pytest.raises(ValueError, match=r"fold1.txt:2: expected 'image_id__classid'"):
        Pascal5i(root, "val", fold=1)
    shutil.rmtree(root / "SegmentationClassAug")
    with pytest.raises(FileNotFoundError, match="SegmentationClassAug"):
        Pascal5i(root, "val")


COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]  # the 80 COCO ids


def test_coco20i_fold_definition_and_items(tmp_path):
    assert len(COCO_IDS) == 80
    assert coco20i_fold_category_ids(COCO_IDS, 0)[:3] == [1, 5, 9]  # person, airplane, boat
    assert sorted(sum((coco20i_fold_category_ids(COCO_IDS, k) for k in range(4)), [])) == COCO_IDS
    root = tmp_path / "COCO"
    cats = [{"id": cid, "name": f"class{cid}"} for cid in (1, 2, 3, 4, 5, 6)]  # fold 0: ids 1, 5
    images, anns = [], []
    for k in range(4):
        name = f"COCO_val2014_{k:012d}.jpg"
        write_image(root / "val2014" / name, 40, 30, seed=k)
        images.append({"id": k, "file_name": name, "width": 40, "height": 30})
        anns.append({"image_id": k, "category_id": 1, "segmentation": [flat_rect(2, 2, 11, 11)]})
        crowd = np.zeros((30, 40), bool)
        crowd[20:25, 30:35] = True
        anns.append({"image_id": k, "category_id": 1, "segmentation": encode_rle_string(crowd), "iscrowd": 1})
        anns.append({"image_id": k, "category_id": 2 + k % 4, "segmentation": [flat_rect(20, 5, 29, 14)]})
    write_coco_json(root / "annotations" / "instances_val2014.json", images, anns, cats)
    ds = Coco20i(root, "val", fold=0, config=OneShotConfig(image_size=SIZE, visual_prompt=VP))
    assert {c for _, c in ds.records} == {1, 5} and len(ds) == 5  # 4 x person + image 3's class 5
    _, mask, _ = ds.load(0, 1)
    assert mask.sum() == 100 + 25  # polygon union with the crowd RLE
    s = ds[0]
    assert s.class_name == "class1" and s.support is not None and s.mask.shape == (1, SIZE, SIZE)
    with pytest.raises(FileNotFoundError, match="train2014"):
        Coco20i(root, "train", fold=0)


def test_one_shot_negatives(tmp_path):
    write_voc(tmp_path / "VOC2012")
    root = tmp_path / "VOC2012"
    plain = Pascal5i(root, "val", 0, OneShotConfig(image_size=SIZE, visual_prompt=VP))
    zero = Pascal5i(root, "val", 0, OneShotConfig(image_size=SIZE, visual_prompt=VP, negative_prob=0.0))
    assert all(torch.equal(plain[i].support, zero[i].support) and not zero[i].is_negative for i in range(4))
    always = Pascal5i(root, "val", 0, OneShotConfig(image_size=SIZE, visual_prompt=VP, negative_prob=1.0))
    for i in range(len(always)):
        key, cls = always.records[i]
        s = always[i]
        prompted = VOC_CLASSES.index(s.class_name) + 1
        assert s.is_negative and s.mask.sum() == 0 and s.support is not None
        assert prompted != cls and prompted not in always.classes_of[key] and prompted in always.by_class
        assert s.phrase == f"a photo of a {s.class_name}." and s.valid is not None
    half = Pascal5i(root, "val", 0, OneShotConfig(image_size=SIZE, with_support=False, negative_prob=0.5, episodes=40))
    assert 10 <= sum(half[i].is_negative for i in range(40)) <= 30
    with pytest.raises(ValueError, match="negative_prob must be in"):
        Pascal5i(root, "val", 0, OneShotConfig(negative_prob=1.5))


# --- Pascal VOC zero-shot -----------------------------------------------------------------
def test_unseen_sets_and_prompt_filter():
    assert set(unseen_classes(4)) == {"cow", "motorbike", "aeroplane", "sofa"}
    assert set(unseen_classes(10)) == {
        "cow", "motorbike", "aeroplane", "sofa", "cat", "tv monitor", "train", "bottle", "chair", "potted plant",
    }  # fmt: skip
    banned = ["brown cows", "a calf", "man on a motorcycle", "jet plane", "the couch", "kittens", "Potted plants",
              "television", "wine bottles", "old armchair", "locomotive"]  # fmt: skip
    allowed = ["white horse", "plant in a pot", "wooden table", "people on a bus", "dog"]
    assert not any(is_prompt_allowed(p, 10) for p in banned)
    assert all(is_prompt_allowed(p, 10) for p in allowed)
    assert is_prompt_allowed("black cat", ["cow"]) and not is_prompt_allowed("black cat", ["cat"])
    with pytest.raises(ValueError, match="unknown Pascal VOC class"):
        is_prompt_allowed("x", ["unicorn"])


def test_pascal_zeroshot_items(tmp_path):
    labels = write_voc(tmp_path / "VOC2012")
    ds = PascalZeroShot(tmp_path / "VOC2012", "val", PascalZeroShotConfig(n_unseen=4, image_size=SIZE))
    item = ds[1]
    assert item.image.shape == (3, SIZE, SIZE)
    assert item.labels.shape == (SIZE, SIZE) and item.labels.dtype == torch.int64
    assert set(item.labels.unique().tolist()) <= set(np.unique(labels[item.image_id]).tolist())
    assert len(item.prompts) == 20 and item.prompts[0] == "a photo of a aeroplane."
    assert set(item.unseen) == {1, 10, 14, 18}
    dropped = PascalZeroShot(tmp_path / "VOC2012", "val", PascalZeroShotConfig(n_unseen=2, drop_unseen_images=True))
    assert len(dropped) == 0  # every fixture image shows a motorbike
    with pytest.raises(FileNotFoundError, match="test.txt"):
        PascalZeroShot(tmp_path / "VOC2012", "test")


# --- LVIS generalized prompts ---------------------------------------------------------------
def test_lvis_generalized(tmp_path):
    root = tmp_path / "lvis"
    names = ["armchair", "sofa", "bus_(vehicle)", "dog", "umbrella"]
    cats = [{"id": i + 1, "name": n, "synonyms": [n]} for i, n in enumerate(names)]
    images, anns = [], []
    for k in range(2):
        write_image(root / "val2017" / f"{k:012d}.jpg", 40, 30, seed=k)
        url = f"http://images.cocodataset.org/val2017/{k:012d}.jpg"
        images.append({"id": k, "coco_url": url, "width": 40, "height": 30})
    anns += [
        {"image_id": 0, "category_id": 1, "segmentation": [flat_rect(0, 0, 9, 9)]},
        {"image_id": 0, "category_id": 2, "segmentation": [flat_rect(20, 10, 29, 19)]},
        {"image_id": 1, "category_id": 3, "segmentation": [flat_rect(5, 5, 14, 14)]},
        {"image_id": 1, "category_id": 5, "segmentation": [flat_rect(20, 20, 24, 24)]},
    ]
    write_coco_json(root / "lvis_v1_val.json", images, anns, cats)
    ds = LvisGeneralized(root, "val", LvisGeneralizedConfig(image_size=SIZE))
    prompts = {(it.image_id, it.prompt) for it in ds.items}
    assert prompts == {(0, "sit on"), (0, "has legs"), (1, "can be driven"), (1, "has wheels")}
    i = [k for k, it in enumerate(ds.items) if it.prompt == "sit on"][0]
    assert ds.index.mask(0, list(ds.items[i].category_ids)).sum() == 200  # armchair + sofa
    s = ds[i]
    assert s.phrase == "sit on" and s.class_name == "sit on" and s.mask.shape == (1, SIZE, SIZE)
    assert "wheelchair" in ds.missing_categories
    only = LvisGeneralized(root, "val", LvisGeneralizedConfig(subsets=("affordances",)))
    assert {it.prompt for it in only.items} == {"sit on"}


def test_lvis_objects(tmp_path):
    root = tmp_path / "lvis"
    write_lvis_objects(root)
    ds = LvisObjects(root, "val", LvisObjectsConfig(image_size=SIZE))
    assert sorted(it.image_id for it in ds.items) == [0, 3]  # one object per eligible image
    for it in ds.items:
        assert ds.index.instance_area(it.image_id, it.category_id, it.instance) >= 0.1 * 40 * 30
    by_image = {it.image_id: it for it in ds.items}
    assert by_image[3].candidates == ("umbrella", "bus (vehicle)", "dog")
    assert by_image[0].candidates[0] in ("armchair", "bus (vehicle)") and len(by_image[0].candidates) == 3
    assert set(by_image[0].candidates) == {"armchair", "bus (vehicle)", "dog"}
    assert ds.index.instance_mask(0, 1, 0).sum() == 300 and ds.index.mask(0, 1).sum() == 325  # one instance only
    s = ds[[it.image_id for it in ds.items].index(3)]
    assert isinstance(s, ObjectSample) and s.class_name == "umbrella" and s.candidates[0] == "umbrella"
    assert s.mask.shape == (1, SIZE, SIZE) and s.mask.mean().item() == pytest.approx(400 / 1200, abs=0.05)
    assert len(LvisObjects(root, "val", LvisObjectsConfig(images=1))) == 1
    assert len(LvisObjects(root, "val", LvisObjectsConfig(min_others=1))) == 3  # image 1 too
    assert LvisObjects(root).items == LvisObjects(root).items  # reproducible
    firsts = {LvisObjects(root, "val", LvisObjectsConfig(seed=k)).items[0].image_id for k in range(8)}
    assert firsts == {0, 3}  # the seed changes the draw
    with pytest.raises(ValueError, match=r"no image has an object of >= 90% of the image"):
        LvisObjects(root, "val", LvisObjectsConfig(min_area=0.9))


# --- user folders ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_phrase_folder(tmp_path, fmt):
    rows = [("a.jpg", "a.png", "red, shiny car"), ("b.jpg", "", "a unicorn")]
    write_phrase_folder(tmp_path, rows, fmt=fmt)
    ds = PhraseFolder(tmp_path, config=FolderConfig(image_size=SIZE, template="a photo of a {}."))
    assert len(ds) == 2
    pos, neg = ds[0], ds[1]
    assert pos.phrase == "a photo of a red, shiny car." and pos.mask.shape == (1, SIZE, SIZE)
    assert pos.mask.mean().item() == pytest.approx(10 * 20 / (30 * 40), abs=0.02)
    assert neg.is_negative and neg.mask.sum() == 0


def test_phrase_folder_errors(tmp_path):
    write_phrase_folder(tmp_path, [("a.jpg", "a.png", "car")])
    (tmp_path / "phrases.csv").write_text("image,mask,phrase\na.jpg,a.png,car\nmissing.jpg,a.png,dog\n")
    with pytest.raises(ValueError, match=r"phrases.csv:3: image 'missing.jpg' not found"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.csv").write_text("a.jpg,a.png\n")
    with pytest.raises(ValueError, match=r"phrases.csv:1: expected 3 fields"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.csv").unlink()
    (tmp_path / "phrases.jsonl").write_text('{"image": "a.jpg", "mask": "a.png", "phrase": "car"}\n{oops\n')
    with pytest.raises(ValueError, match=r"phrases.jsonl:2: not a JSON object"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.jsonl").write_text('{"image": "a.jpg", "mask": "a.png", "phrase": "car"}\n')
    with pytest.raises(NoSplitError, match=r"phrases.jsonl' has no split column.*phrases_val.csv"):
        PhraseFolder(tmp_path, split="val")
    (tmp_path / "phrases.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="phrases_val.csv"):
        PhraseFolder(tmp_path, split="val")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_phrase_folder_split_column(tmp_path, fmt):
    rows = [("a.jpg", "a.png", "car", "train"), ("b.jpg", "b.png", "dog", "val"), ("c.jpg", "", "cat", "val")]
    write_phrase_folder(tmp_path, [r[:3] for r in rows])
    if fmt == "csv":
        text = "image,mask,phrase,split\n" + "".join(f"{i},{m},{p},{s}\n" for i, m, p, s in rows)
        (tmp_path / "phrases.csv").write_text(text)
    else:
        (tmp_path / "phrases.csv").unlink()
        lines = [json.dumps({"image": i, "mask": m or None, "phrase": p, "split": s}) for i, m, p, s in rows]
        (tmp_path / "phrases.jsonl").write_text("\n".join(lines) + "\n")
    val = PhraseFolder(tmp_path, "val", FolderConfig(image_size=SIZE))
    assert [x.class_name for x in (val[0], val[1])] == ["dog", "cat"] and val[1].is_negative
    assert [e.phrase for e in PhraseFolder(tmp_path, "train").entries] == ["car"]
    assert len(PhraseFolder(tmp_path)) == 3 and PhraseFolder(tmp_path).splits == ["train", "val"]
    with pytest.raises(ValueError, match=r"no samples of split 'test' \(its split column holds: train, val\)"):
        PhraseFolder(tmp_path, "test")
    (tmp_path / f"phrases_test.{fmt}").write_text((tmp_path / f"phrases.{fmt}").read_text())
    assert len(PhraseFolder(tmp_path, "test")) == 3  # a list named for the split wins; all its rows


def test_phrase_folder_split_column_errors(tmp_path):
    write_phrase_folder(tmp_path, [("a.jpg", "a.png", "car"), ("b.jpg", "a.png", "dog")])
    (tmp_path / "phrases.csv").write_text("image,mask,phrase,split\na.jpg,a.png,car,val\nb.jpg,a.png,dog\n")
    with pytest.raises(ValueError, match=r"phrases.csv:3: expected 4 fields 'image,mask,phrase,split'.*got 3"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.csv").write_text("image,mask,phrase,split\na.jpg,a.png,car, \n")
    with pytest.raises(ValueError, match=r"phrases.csv:2: the split column is empty"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.csv").write_text("a.jpg,a.png,red, shiny car\n")  # unquoted comma, no split header
    with pytest.raises(ValueError, match=r"phrases.csv:1: expected 3 fields .*quote phrases with commas"):
        PhraseFolder(tmp_path)
    (tmp_path / "phrases.csv").unlink()
    (tmp_path / "phrases.jsonl").write_text(
        '{"image": "a.jpg", "mask": "a.png", "phrase": "car", "split": "val"}\n'
        '{"image": "b.jpg", "mask": "a.png", "phrase": "dog"}\n'
    )
    with pytest.raises(ValueError, match=r"phrases.jsonl:2: 'split' must be given on every line or on none"):
        PhraseFolder(tmp_path)


def test_coco_folder(tmp_path):
    write_image(tmp_path / "images" / "x.jpg", 40, 30)
    cats = [{"id": 7, "name": "mug"}, {"id": 9, "name": "spoon"}]
    anns = [
        {"image_id": 1, "category_id": 7, "segmentation": [flat_rect(0, 0, 9, 9)]},
        {"image_id": 1, "category_id": 9, "segmentation": [flat_rect(20, 20, 29, 29)]},
    ]
    image = {"id": 1, "file_name": "x.jpg", "width": 40, "height": 30}
    write_coco_json(tmp_path / "annotations.json", [image], anns, cats)
    ds = CocoFolder(tmp_path, config=FolderConfig(image_size=SIZE))
    assert [ds[i].phrase for i in range(len(ds))] == ["mug", "spoon"]
    write_coco_json(
        tmp_path / "annotations_val.json", [{"id": 2, "file_name": "gone.jpg", "width": 4, "height": 4}], [], cats
    )
    with pytest.raises(ValueError, match="image id 2: file .*gone.jpg' not found"):
        CocoFolder(tmp_path, split="val")
    with pytest.raises(NoSplitError, match=r"annotations_test.json' for split 'test'.*COCO lists have no split"):
        CocoFolder(tmp_path, split="test")


# --- collate ------------------------------------------------------------------------------------
def test_collate():
    def sample(support, negative=False, valid=None):
        return Sample(torch.randn(3, 8, 8), torch.ones(1, 8, 8), "p", support, "k", negative, valid)

    valid = torch.zeros(1, 8, 8, dtype=torch.bool)
    batch = collate([sample(torch.ones(3, 4, 4)), sample(None, True, valid)])
    assert batch["image"].shape == (2, 3, 8, 8) and batch["mask"].shape == (2, 1, 8, 8)
    assert batch["support"].shape == (2, 3, 4, 4) and batch["support"][1].abs().sum() == 0
    assert batch["has_support"].tolist() == [True, False] and batch["is_negative"].tolist() == [False, True]
    assert batch["phrase"] == ["p", "p"] and batch["class_name"] == ["k", "k"]
    assert batch["valid"][0].all() and not batch["valid"][1].any()
    assert collate([sample(None)])["support"].shape == (1, 3, 8, 8)
