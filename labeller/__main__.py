import sys

from labeller.cli import main

sys.exit(main())
