"""Kafka topics of the design; created explicitly by `binhyen up`, never auto-created."""

from __future__ import annotations

from streams.config import Settings

TIPS = "binhyen.tips.v1"
DEVICE_SIGNALS = "binhyen.device-signals.v1"
MODEL_CHANGES = "binhyen.model-changes.v1"
FEEDBACK = "binhyen.feedback.v1"
ALERT_ACTIONS = "binhyen.alert-actions.v1"
INCIDENTS = "binhyen.incidents.v1"
ALERTS = "binhyen.alerts.v1"
DEAD_LETTER = "binhyen.dead-letter.v1"
# Internal: alert actions (keyed by alert id upstream), verdicts sent without a commune and timer
# ticks, re-keyed by commune so they reach the worker that owns that commune's state.
COMMUNE_CONTROL = "binhyen.commune-control.v1"

# Topics whose records can be re-derived (ticks and re-keyed actions): a wrongly auto-created
# one may be re-created even when not empty.
REBUILDABLE = (COMMUNE_CONTROL,)

TOPIC_OF_TYPE = {
    "tip": TIPS,
    "device_signal": DEVICE_SIGNALS,
    "model_change": MODEL_CHANGES,
    "feedback": FEEDBACK,
    "alert_action": ALERT_ACTIONS,
    "incident": INCIDENTS,
    "alert": ALERTS,
    "dead_letter": DEAD_LETTER,
}
INPUT_TOPICS = (TIPS, DEVICE_SIGNALS, MODEL_CHANGES, FEEDBACK, ALERT_ACTIONS)
# Keyed by commune code and joined by the processors: one partition count for all of them.
COMMUNE_KEYED = (TIPS, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, COMMUNE_CONTROL)


# What a worker of a processor version writes: the control topic is its own (its consumer
# group reads it); when reprocessing, so are its outputs (history never reaches the live topics).
VERSIONED = (COMMUNE_CONTROL,)
REPROCESS_OUTPUTS = (INCIDENTS, ALERTS, DEAD_LETTER)


def physical(settings: Settings, topic: str) -> str:
    """The topic a worker with these settings really reads or writes for the design's `topic`."""
    if settings.processor_version and topic in VERSIONED:
        return f"{topic}.{settings.processor_version}"
    if settings.reprocessing and topic in REPROCESS_OUTPUTS:
        return f"{topic}.reprocess.{settings.processor_version}"
    return topic


def partition_counts(settings: Settings) -> dict[str, int]:
    return {
        physical(settings, topic): settings.commune_partitions if topic in COMMUNE_KEYED else settings.other_partitions
        for topic in (*TOPIC_OF_TYPE.values(), COMMUNE_CONTROL)
    }
