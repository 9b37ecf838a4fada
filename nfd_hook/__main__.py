import sys

from nfd_hook.cli import main

sys.exit(main())
