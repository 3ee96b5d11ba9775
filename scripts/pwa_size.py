#!/usr/bin/env python3
"""Initial JavaScript of the built PWA, gzipped: the entry script and every module it preloads
(what a phone downloads before the first screen). Lazy chunks (scanner, zxing-wasm) are listed apart."""

import gzip
import re
import sys
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "pwa" / "dist"


def gz(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), 9))


def main() -> int:
    html = (DIST / "index.html").read_text()
    initial = sorted(set(re.findall(r'(?:src|href)="/(assets/[^"]+\.js)"', html)))
    css = sorted(set(re.findall(r'href="/(assets/[^"]+\.css)"', html)))
    js_total = sum(gz(DIST / p) for p in initial)
    print(f"initial JS (gzip): {js_total / 1024:.1f} KiB in {len(initial)} files; initial CSS (gzip): "
          f"{sum(gz(DIST / p) for p in css) / 1024:.1f} KiB")
    for path in initial:
        print(f"  {path}: {gz(DIST / path) / 1024:.1f} KiB")
    lazy = [p for p in (DIST / "assets").iterdir() if p.suffix in (".js", ".wasm") and f"assets/{p.name}" not in initial]
    print(f"lazy chunks: {len(lazy)}, {sum(gz(p) for p in lazy) / 1024:.1f} KiB gzip in all; largest:")
    for path in sorted(lazy, key=gz, reverse=True)[:4]:
        print(f"  assets/{path.name}: {gz(path) / 1024:.1f} KiB")
    return 0 if js_total <= 120 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
