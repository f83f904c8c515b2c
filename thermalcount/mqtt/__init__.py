"""MQTT: one door's counts for Home Assistant (``run --mqtt``) and the room aggregator (``room``)."""
