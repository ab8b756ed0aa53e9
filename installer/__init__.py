"""The hcios installer: config validation, preflight, disk layout, install steps, TUI and kickstart."""
