"""The pluggy markers bound to the ``codex_ml`` project name."""

from __future__ import annotations

import pluggy

from codex_ml.plugins.kinds import PROJECT_NAME

#: Marks a plugin function as an implementation of a codex_ml hook.
hookimpl: pluggy.HookimplMarker = pluggy.HookimplMarker(PROJECT_NAME)

#: Marks a function in :mod:`codex_ml.plugins.hookspecs` as a hook specification.
hookspec: pluggy.HookspecMarker = pluggy.HookspecMarker(PROJECT_NAME)
