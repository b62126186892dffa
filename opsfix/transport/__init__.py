"""Transports: how commands reach a host. The only package that imports paramiko/fabric."""
