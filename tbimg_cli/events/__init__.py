"""The event-file format and where its records go: TFRecord framing (`records`), summaries (`writer`),
PNG encoding (`png`), timestamped run folders (`runs`) and buckets (`storage`).

The bottom floor: imports no other concern of tbimg, only the root's errors and shortcuts.
"""
