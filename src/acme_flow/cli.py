"""certrenew command line (placeholder, filled in by the vertical slice)."""


def main(argv=None) -> int:
    return 0
