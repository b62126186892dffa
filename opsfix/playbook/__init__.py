"""Playbooks, from file to per-host work: parsed with positions, templated, typed and bound
before any host is contacted.
"""
