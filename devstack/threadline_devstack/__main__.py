"""``python -m threadline_devstack run`` (what ``python3 dev.py run`` starts)."""

from __future__ import annotations

import sys

from threadline_devstack.stack import main as stack_main


def main() -> None:
    sys.exit(stack_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
