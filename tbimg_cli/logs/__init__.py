"""Reading any logdir back without TensorFlow: the reader (`readback`), `tbimg inspect`
(`inspection`) and `tbimg export` (`export`).

May import `events`; never `tutorial`, `confusion`, `images` or `cli`.
"""
