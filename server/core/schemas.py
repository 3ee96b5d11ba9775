"""Base Struct for request bodies: unknown fields are an error, not silently dropped."""

import msgspec


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Output(msgspec.Struct, kw_only=True):
    pass
