"""The gateways' side: the simulated night (registry shape, tallies, truth), registry files, the
Kemendagri region import, and the simulated gateways that load the registry and produce events.

Reaches the core and Kafka (and ClickHouse, to load a registry); never the read side.
"""
