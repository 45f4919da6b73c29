"""Machines from the host side (docs/hosts.md): their owners' listings and prices
(:mod:`.hosting`), maintenance windows (:mod:`.maintenance`), and onboarding a machine by
probing its Docker engine (:mod:`.probe` reads the engine, :mod:`.smi` parses ``nvidia-smi``,
:mod:`.onboarding` stores what was found)."""
