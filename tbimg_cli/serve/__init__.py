"""Serving: TensorBoard started in-process or in a TensorFlow-free child (`tensorboard`).

May import `events` and `logs`; never `tutorial`, `confusion`, `images` or `cli`.
"""
