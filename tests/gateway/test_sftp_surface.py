"""asyncssh's SFTPServer works on the gateway host's own files for every method a subclass does
not override: the gateway's server overrides every one (served in the container or refused)."""

from __future__ import annotations

import inspect

import asyncssh

from gpuyard.gateway.sftp import ContainerSFTP

# Helpers of asyncssh's that touch no file: inherited on purpose.
PURE = {"convert_attrs", "format_longname"}


def test_sftp_overrides_every_method_that_could_touch_host_files():
    methods = {name for name, _ in inspect.getmembers(asyncssh.SFTPServer, inspect.isfunction)
               if not name.startswith("__")}
    inherited = {name for name in methods - PURE if name not in vars(ContainerSFTP)}
    assert inherited == set(), f"not overridden (would work on the gateway host): {inherited}"
