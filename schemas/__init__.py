"""Avro schemas of every binhyen event (all published versions) and their codec."""

from schemas.codec import CODEC, Codec, DecodeError, EVENT_TYPES, INPUT_TYPES

__all__ = ["CODEC", "Codec", "DecodeError", "EVENT_TYPES", "INPUT_TYPES"]
