"""Text in the lines of mail's formats (RFC 5322 headers, RFC 5545 content lines): each
line break written one way, and UTF-8 cut into lines only between characters."""


def one_kind_of_line_break(text: str) -> str:
    """``text`` with every CRLF and lone CR as LF, so that each line break is written once,
    in whatever way the format asks."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def character_boundary(octets: bytes, end: int) -> int:
    """The last cut at or before ``end`` that splits no character of UTF-8 ``octets``."""
    while end < len(octets) and octets[end] & 0xC0 == 0x80:  # a continuation byte
        end -= 1
    return end
