#!/usr/bin/env python3
"""After pytest: print how many tests ran per database engine; with CI=true, fail unless both ran
and none of them was skipped (a skipped backend in CI is a failure, not a pass)."""

import os
import sys
import xml.etree.ElementTree as ET


def main(path: str) -> int:
    counts = {"sqlite": {"ran": 0, "skipped": 0}, "postgres": {"ran": 0, "skipped": 0}}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        for engine in counts:
            if f"[{engine}" in name or f"-{engine}]" in name or f"-{engine}-" in name:
                skipped = case.find("skipped") is not None
                counts[engine]["skipped" if skipped else "ran"] += 1
    print("tests per engine: " + ", ".join(f"{k} {v['ran']} ran / {v['skipped']} skipped" for k, v in counts.items()))
    if os.environ.get("CI", "").lower() == "true":
        bad = [k for k, v in counts.items() if v["ran"] == 0 or v["skipped"]]
        if bad:
            print(f"CI requires every test on both engines; missing or skipped: {', '.join(bad)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/junit.xml"))
