"""`python -m iaa_lib <command> ...`: the book's command line (see `iaa_lib.book.cli`)."""
import sys

from iaa_lib.book.cli import main

sys.exit(main())
