"""How tbimg words counts in messages, shared by the library's errors and the terminal's output."""


def counted(count: int, noun: str) -> str:
    """ "1 image", "25 images": messages never say "the 1 images" or "image(s)"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
