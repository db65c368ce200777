"""Quests: file formats and validation (formats), admission against the realm (admission),
the queue on disk (queue), the one publish path and the one writer of `quests` rows
(publish), and the start-up repair of the queue (recovery)."""
