"""The bundled offline catalogue: a built-in hook plugin (see :mod:`.plugin`)."""
