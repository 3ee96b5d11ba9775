"""Renders the PWA icons into pwa/public/icons (run once; the PNGs are committed)."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "pwa" / "public" / "icons"
RED = (200, 16, 46, 255)
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"


def icon(size: int, maskable: bool) -> Image.Image:
    image = Image.new("RGBA", (size, size), RED if maskable else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if not maskable:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=RED)
    # The maskable safe zone is the inner 80 %: keep the glyph well inside it.
    font = ImageFont.truetype(FONT, int(size * (0.46 if maskable else 0.6)), index=2)
    draw.text((size / 2, size / 2), "驿", font=font, fill="white", anchor="mm")
    return image


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    icon(192, False).save(OUT / "icon-192.png", optimize=True)
    icon(512, False).save(OUT / "icon-512.png", optimize=True)
    icon(512, True).save(OUT / "maskable-512.png", optimize=True)
    icon(180, True).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)
    (OUT / "favicon.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="13" fill="#c8102e"/>'
        '<text x="32" y="45" font-size="40" text-anchor="middle" fill="#fff" font-family="sans-serif" font-weight="700">驿</text></svg>\n'
    )


if __name__ == "__main__":
    main()
