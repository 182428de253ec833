"""What a training run folder says of the model it made (experiment.json, train_log.csv), as the
facts of a model card (`clipseg export-hf`)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..export.model_card import CardFacts
from ..io.files import load_json_file
from .config import Experiment
from .csv_log import HEADER
from .trainer import LOG_NAME

RECORD_NAME = "experiment.json"
MAX_RECORD_BYTES = 1 << 20


def _losses(log: Path) -> tuple[float | None, float | None]:
    """First and last loss of a train_log.csv (None, None when there is none or it is unreadable)."""
    try:
        with open(log, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if set(HEADER) <= set(r)]
        return float(rows[0]["loss"]), float(rows[-1]["loss"])
    except (OSError, ValueError, KeyError, IndexError, csv.Error):
        return None, None


def run_facts(weights: str | Path, metrics: list[dict] | None = None) -> CardFacts:
    """The card facts of the run that wrote `weights` (its folder's experiment.json and train
    log), plus evaluation results `metrics`; only the metrics when `weights` is not in a run folder."""
    facts = CardFacts(metrics=list(metrics or []))
    folder = Path(weights).parent if Path(weights).is_file() else Path(weights)
    record = folder / RECORD_NAME
    if not record.is_file():
        return facts
    try:
        exp = Experiment.from_dict(load_json_file(record, MAX_RECORD_BYTES, "experiment record"))
    except (OSError, ValueError):
        return facts  # an unreadable record: the card says what else it knows
    facts.name, facts.base, facts.dataset = exp.name, exp.init, exp.data.dataset
    facts.backbone = exp.trained.get("backbone")
    facts.iterations, facts.batch_size, facts.lr = exp.train.iterations, exp.train.batch_size, exp.train.lr
    facts.data = exp.trained.get("data")
    facts.first_loss, facts.final_loss = _losses(folder / LOG_NAME)
    return facts
