"""Print the intent macro-F1 of Rasa's NLU cross-validation (``make nlu-cv``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path("results/nlu-cv")
    report_file = folder / "intent_report.json"
    if not report_file.is_file():
        print(f"no intent report at {report_file}", file=sys.stderr)
        return 1
    report = json.loads(report_file.read_text(encoding="utf-8"))
    macro = report["macro avg"]
    weighted = report["weighted avg"]
    worst = sorted(
        ((name, values["f1-score"]) for name, values in report.items()
         if isinstance(values, dict) and "f1-score" in values and name not in ("macro avg", "weighted avg", "micro avg")),
        key=lambda item: item[1],
    )[:5]
    print(f"NLU cross-validation (5 folds): intent macro-F1 {macro['f1-score']:.3f} (target >= 0.95), "
          f"weighted F1 {weighted['f1-score']:.3f}, accuracy {report.get('accuracy', float('nan')):.3f}")
    print("Lowest F1: " + ", ".join(f"{name} {f1:.2f}" for name, f1 in worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
