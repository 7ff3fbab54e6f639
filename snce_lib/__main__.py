from snce_lib.cli import main

raise SystemExit(main())
