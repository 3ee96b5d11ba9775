"""How people are shown to those who may not see them in full (phones, names on a public screen)."""

from __future__ import annotations


def mask_phone(phone: str) -> str:
    """'13900000001' → '139****0001' (as the members API shows phones outside one's own subtree)."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else phone


def mask_name(name: str) -> str:
    """A name for a screen others can read: first character, '*', last character.

    '张三' → '张*', '王建国' → '王*国', '欧阳建国' → '欧*国'; one character → '张*'.
    """
    name = name.strip()
    if not name:
        return "*"
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" + name[-1]
