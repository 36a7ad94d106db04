"""scikit-learn's own answer for tests/data_readers_test.ts (the HAM10000 split goldens).

Reads a JSON list of cases {"labels": [...], "seed": n} from the file named by argv[1] and prints,
per case, the index lists the paper's two calls give (docs/protocol.md §2.4):

    rest, test = train_test_split(idx, test_size=0.15, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=0.17647058823529413, stratify=y[rest], random_state=seed)

as positions: first = (rest, test) into the labels, second = (train, val) into `rest`.
Needs python3-sklearn (Debian). `--check` exits 0 when sklearn imports.
"""
import json
import sys

if sys.argv[1] == "--check":
    try:
        import sklearn
    except ImportError as err:
        print(err)
        sys.exit(1)
    print(f"scikit-learn {sklearn.__version__}")
    sys.exit(0)

import numpy as np
from sklearn.model_selection import train_test_split

out = []
for case in json.load(open(sys.argv[1])):
    y = np.asarray(case["labels"])
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.15, stratify=y, random_state=case["seed"])
    pos = np.arange(len(rest))
    train, val = train_test_split(pos, test_size=0.17647058823529413, stratify=y[rest], random_state=case["seed"])
    out.append({"first": [rest.tolist(), test.tolist()], "second": [train.tolist(), val.tolist()]})
print(json.dumps(out))
