"""Your own images: the value rules for arrays (`values`), file formats and whole-file checks
(`files`), `log_images` and `ImageLogger` (`logger`), `tbimg log`'s sources and steps (`sources`),
and image grids and figures as PNG (`figures`).

May import `events`; never `tutorial`, `confusion`, `logs` or `cli`.
"""
